"""The HTTP control API (aiohttp, imported only when --api is given).

Every request needs `Authorization: Bearer TOKEN`. The token comes from WSLNET_API_TOKEN
or is generated at start and written to a file only the user can read; a small state
file next to it tells `wslnet status` where the API listens.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from typing import Any

from aiohttp import web

from wslnet.errors import UsageError
from wslnet.forward.control import status as st
from wslnet.forward.control.reload import Reloader
from wslnet.forward.control.statefile import ApiState, state_dir, write_private
from wslnet.forward.core.rules import format_hostport, parse_networks, parse_rule
from wslnet.forward.core.server import Forwarder


class ControlApi:
    def __init__(
        self, fwd: Forwarder, reloader: Reloader, host: str, port: int, token: str | None
    ) -> None:
        self.fwd = fwd
        self.reloader = reloader
        self.host, self.port = host, port
        self.token = token or secrets.token_urlsafe(32)
        self.generated = token is None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/v1/status", self.status),
                web.get("/v1/connections", self.connections),
                web.post("/v1/forwards", self.add_forward),
                web.delete("/v1/forwards/{id}", self.delete_forward),
                web.post("/v1/reload", self.reload),
                web.get("/metrics", self.metrics),
            ]
        )
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            where = format_hostport(self.host, self.port)
            raise UsageError(f"--api: cannot listen on {where}: {exc.strerror or exc}") from None
        port = self.port
        for addr in self.runner.addresses:  # the real port when 0 was asked for
            port = int(addr[1])
        self.url = f"http://{format_hostport(self.host, port)}"
        folder = state_dir()
        token_file = folder / "api-token"
        if self.generated:
            write_private(token_file, self.token + "\n")
        state = ApiState(self.url, token_file if self.generated else None, os.getpid())
        write_private(folder / "api.json", state.as_json())
        self.fwd.log(
            "info",
            "api",
            url=self.url,
            token_file=str(token_file) if self.generated else "WSLNET_API_TOKEN",
        )

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return web.json_response(
                {"error": "a bearer token is required (see the api-token file)"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def _snapshot(self) -> st.Status:
        path = self.reloader.path
        return st.snapshot(self.fwd, str(path) if path else None)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot().as_json())

    async def connections(self, request: web.Request) -> web.Response:
        return web.json_response([f.as_json() for f in st.open_flows(self.fwd)])

    async def metrics(self, request: web.Request) -> web.Response:
        text = st.metrics(self._snapshot())
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def add_forward(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            allow = None
            if request.content_type == "application/json":
                body = json.loads(text)
                if not isinstance(body, dict):
                    raise UsageError("the JSON body must be an object")
                if "rule" in body:
                    text = str(body["rule"])
                else:
                    proto = body.get("proto", "tcp")
                    text = f"{proto}/{body['listen']}" + (
                        f"={body['target']}" if "target" in body else ""
                    )
                if body.get("allow") is not None:
                    if not isinstance(body["allow"], list):
                        raise UsageError("'allow' must be a list of networks")
                    allow = parse_networks(body["allow"], "allow")
            rule = parse_rule(text.strip(), allow)
            rs = await self.fwd.table.add(rule, "api")
        except UsageError as exc:
            return web.json_response({"error": exc.message}, status=400)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return web.json_response({"error": f"bad request body: {exc}"}, status=400)
        return web.json_response(st.rule_status(self.fwd, rs).as_json(), status=201)

    async def delete_forward(self, request: web.Request) -> web.Response:
        wanted = request.match_info["id"]
        rs = self.fwd.table.find(int(wanted)) if wanted.isascii() and wanted.isdigit() else None
        if rs is None:
            return web.json_response({"error": f"no forward {wanted}"}, status=404)
        self.fwd.table.remove(rs)
        return web.json_response({"removed": rs.id, "draining": len(rs.active)})

    async def reload(self, request: web.Request) -> web.Response:
        result = await self.reloader.reload()
        doc = {"reloaded": result.ok, "message": result.message}
        return web.json_response(doc, status=200 if result.ok else 400)
