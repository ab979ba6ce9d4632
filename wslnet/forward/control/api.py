"""The HTTP control API (aiohttp, imported only when --api is given).

Every request needs `Authorization: Bearer TOKEN`, or a dashboard session (dashboard.py).
The token comes from WSLNET_API_TOKEN or is generated at start and written to a file
only the user can read; a small state file next to it tells `wslnet status` where the
API listens. Every answer carries the security headers of sessions.py.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import hmac
import itertools
import logging
import os
import secrets
import time
from typing import Any, cast

from aiohttp import web

from wslnet.contract import document
from wslnet.errors import ListenError, UsageError
from wslnet.forward.control import status as st
from wslnet.forward.control.dashboard import Dashboard
from wslnet.forward.control.gate import Limits, Refuse, RefuseReason, Slot, decide, is_local
from wslnet.forward.control.history import History, Sampler
from wslnet.forward.control.reload import Reloader
from wslnet.forward.control.requests import MAX_BODY, forward_request
from wslnet.forward.control.sessions import SECURITY_HEADERS
from wslnet.forward.control.statefile import ApiState, state_dir, write_private
from wslnet.forward.control.unforwarded import Listeners
from wslnet.forward.core.listen import bind_listener
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.rules import Endpoint, Network, format_addr, format_hostport
from wslnet.forward.core.server import Forwarder

HEADER_TIMEOUT = 10.0  # seconds a connection gets to deliver a request
KEEPALIVE_TIMEOUT = 15.0  # seconds an idle keep-alive connection is kept

_REFUSED: dict[RefuseReason, str] = {
    "no-address": "an API client with no address",
    "not-allowed": "an API client not on --allow",
    "per-client": "too many API connections from one address",
    "full": "too many API connections, none idle",
}


class _Gate:
    """The API's open connections; gate.decide says who comes in and who makes room."""

    def __init__(self, log: EventLog, allow: tuple[Network, ...] | None) -> None:
        self.log = log
        self.limits = Limits(allow=allow)
        self.open: dict[int, _Guarded] = {}
        self.by_transport: dict[asyncio.BaseTransport, _Guarded] = {}
        self.clock = itertools.count()

    def enter(self, guarded: _Guarded, transport: asyncio.BaseTransport) -> bool:
        peer = transport.get_extra_info("peername")
        slots = tuple(g.slot() for g in self.open.values())
        verdict = decide(slots, peer, self.limits)
        client = format_addr(peer)
        if isinstance(verdict, Refuse):
            msg = _REFUSED[verdict.reason]
            self.log.limited(
                f"api-{verdict.reason}", "warning", "api-error", client=client, msg=msg
            )
            return False
        if verdict.evict is not None:
            self.leave(self.open[verdict.evict]).close()
            msg = "closed the longest idle API connection to make room"
            self.log.limited("api-evict", "warning", "api-error", client=client, msg=msg)
        guarded.key = next(self.clock)
        guarded.host = peer[0]
        guarded.local = is_local(guarded.host)
        guarded.idle_since = guarded.key
        self.open[guarded.key] = guarded
        self.by_transport[transport] = guarded
        return True

    def leave(self, guarded: _Guarded) -> _Guarded:
        self.open.pop(guarded.key, None)
        if guarded.transport is not None:
            self.by_transport.pop(guarded.transport, None)
        return guarded

    def began(self, transport: asyncio.BaseTransport | None) -> None:
        guarded = self.by_transport.get(transport) if transport is not None else None
        if guarded is not None:
            guarded.asked = guarded.lately = True
            guarded.busy += 1

    def ended(self, transport: asyncio.BaseTransport | None) -> None:
        guarded = self.by_transport.get(transport) if transport is not None else None
        if guarded is not None:
            guarded.busy -= 1
            guarded.idle_since = next(self.clock)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol behind a door (the gate), and a connection that has not
    delivered a request within HEADER_TIMEOUT is closed (aiohttp itself would wait for a
    request's headers forever)."""

    def __init__(self, gate: _Gate, inner: asyncio.Protocol) -> None:
        self.gate = gate
        self.inner: asyncio.Protocol | None = inner
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.key = -1
        self.host = ""
        self.local = False
        self.asked = False  # it has sent a request
        self.lately = False  # ... since the timer last looked
        self.busy = 0  # its requests being answered
        self.idle_since = 0

    def slot(self) -> Slot:
        busy = self.busy > 0
        return Slot(self.key, self.host, self.local, self.asked, busy, self.idle_since)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.gate.enter(self, transport):
            self.inner = None
            cast(asyncio.Transport, transport).abort()
            return
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT, self._expire)
        assert self.inner is not None
        self.inner.connection_made(transport)

    def close(self) -> None:
        if self.transport is not None:
            cast(asyncio.Transport, self.transport).abort()

    def _expire(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.lately or self.busy:  # it asked something: give it another period
            self.lately = False
            self.timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT, self._expire)
            return
        self.gate.log.limited("api-slow", "warning", "api-error", msg="no request in time")
        self.close()

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is None:
            return
        self.gate.leave(self)
        if self.timer is not None:
            self.timer.cancel()
        self.inner.connection_lost(exc)


class _ToEventLog(logging.Handler):
    """aiohttp's own log records as one event-log line each, never a traceback."""

    def __init__(self, log: EventLog) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.limited(f"aiohttp:{record.msg}", "warning", "api-error", msg=record.getMessage())


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
        self.server: asyncio.base_events.Server | None = None
        self.gate = _Gate(fwd.log, fwd.config.allow)
        self.dashboard = Dashboard(fwd.log, host)
        self.history = History()
        self.sampler = Sampler(self.history, fwd.table, fwd.log)
        self.listeners = Listeners(fwd)
        self.url = ""

    async def start(self) -> None:
        aiohttp_log = logging.getLogger("aiohttp")
        aiohttp_log.handlers[:] = [_ToEventLog(self.fwd.log)]
        aiohttp_log.propagate = False
        app = web.Application(middlewares=[self._errors, self._auth], client_max_size=MAX_BODY)
        app.on_response_prepare.append(_secure)
        app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/v1/status", self.status),
                web.get("/v1/connections", self.connections),
                web.post("/v1/forwards", self.add_forward),
                web.delete("/v1/forwards/{id}", self.delete_forward),
                web.post("/v1/reload", self.reload),
                web.get("/metrics", self.metrics),
                web.post("/v1/login-link", self.login_link),
                web.get("/v1/history", self.history_doc),
                web.get("/v1/wsl-listeners", self.wsl_listeners),
                *self.dashboard.routes(),
            ]
        )
        self.runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT, handle_signals=False
        )
        await self.runner.setup()
        handler = self.runner.server
        assert handler is not None
        gate = self.gate
        try:
            sock = bind_listener(Endpoint(self.host, self.port))
            self.server = await asyncio.get_running_loop().create_server(
                lambda: _Guarded(gate, handler()), sock=sock
            )
            port = int(sock.getsockname()[1])  # the real port when 0 was asked for
            self.dashboard.port = port
            self.url = f"http://{format_hostport(self.host, port)}"
            folder = state_dir()
            token_file = folder / "api-token"
            if self.generated:
                write_private(token_file, self.token + "\n")
            state = ApiState(self.url, token_file if self.generated else None, os.getpid())
            write_private(folder / "api.json", state.as_json())
        except ListenError as exc:
            await self.stop()
            raise UsageError(f"--api: {exc.message}") from None
        except BaseException:
            await self.stop()
            raise
        self.sampler.start()
        self.fwd.log(
            "info",
            "api",
            url=self.url,
            token_file=str(token_file) if self.generated else "WSLNET_API_TOKEN",
        )
        if not Endpoint(self.host, self.port).loopback:
            self.fwd.log("warning", "api", url=self.url, msg=_exposed(self.gate.limits.allow))

    async def stop(self) -> None:
        self.sampler.stop()
        if self.server is not None:
            self.server.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Whatever a request provokes is a JSON answer and at most one log line."""
        self.gate.began(request.transport)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException:
            raise
        except (ValueError, RecursionError) as exc:  # bad bytes, bad JSON, too deep
            return self._refused(request, 400, f"bad request: {type(exc).__name__}")
        except Exception as exc:
            self.fwd.log.limited(
                "api-500", "error", "api-error", msg=f"{type(exc).__name__}: {exc}"
            )
            return web.json_response({"error": "internal error (see the log)"}, status=500)
        finally:
            self.gate.ended(request.transport)
        return response

    def _refused(self, request: web.Request, status: int, why: str) -> web.Response:
        """A client error: the answer says why, and the log says so once a second at most
        per kind (an unauthenticated client must not be able to flood the log)."""
        key = f"api:{status}"  # per kind: a client chooses paths, and could pick 3,000
        path = request.path[:200]
        self.fwd.log.limited(key, "warning", "api-error", status=status, path=path, msg=why)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return web.json_response({"error": why}, status=status, headers=headers)

    def _bearer(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        # Headers arrive as str, undecodable bytes as surrogates: compare bytes as sent.
        sent = given.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(sent, f"Bearer {self.token}".encode())

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # A bearer token cannot come from a page; a session can, so those requests must
        # name the host the API listens on and come from no other page.
        if not self._bearer(request):
            refusal = self.dashboard.refusal(request)
            if refusal is not None:
                return self._refused(request, refusal.status, refusal.why)
        response: web.StreamResponse = await handler(request)
        return response

    async def login_link(self, request: web.Request) -> web.Response:
        """A one-time dashboard login link, for `wslnet dashboard` (bearer token only)."""
        if not self._bearer(request):
            return self._refused(request, 401, "a bearer token is required")
        return web.json_response(document(url=self.dashboard.login_url(self.url)))

    async def history_doc(self, request: web.Request) -> web.Response:
        return web.json_response(self.history.as_json(time.time()))

    async def wsl_listeners(self, request: web.Request) -> web.Response:
        return web.json_response(await self.listeners.document())

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def _snapshot(self) -> st.Status:
        path = self.reloader.path
        return st.snapshot(self.fwd, str(path) if path else None)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot().as_json())

    async def connections(self, request: web.Request) -> web.Response:
        flows = [f.as_json() for f in st.open_flows(self.fwd)]
        return web.json_response(document(connections=flows))

    async def metrics(self, request: web.Request) -> web.Response:
        text = st.metrics(self._snapshot())
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def add_forward(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp refuses more than client_max_size
        try:
            rule = forward_request(body, request.content_type)
            rs = await self.fwd.table.add(rule, "api")
        except (UsageError, ListenError) as exc:
            return self._refused(request, 400, exc.message)
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


def _exposed(allow: tuple[Network, ...] | None) -> str:
    """The warning for an API beyond loopback: plain HTTP carries the token in clear."""
    if allow is None:
        who = "anyone who can connect may try it: limit them with --allow CIDR"
    else:
        who = "only loopback and --allow networks may connect"
    return (
        "the API listens beyond loopback on plain HTTP, so its bearer token crosses the "
        f"network unencrypted; {who}"
    )


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer, errors included: never framed, never sniffed, never cached."""
    response.headers.update(SECURITY_HEADERS)
