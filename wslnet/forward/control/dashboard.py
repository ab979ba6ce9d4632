"""The forwarder's live dashboard (served by the API with --api): a page from the
package (no CDN, no build step, no inline script) that polls the API.

The page holds no secret. `wslnet dashboard` asks the API (with the bearer token) for a
login link whose fragment holds a one-time code; the page trades the code for a session
token (sessions.py says why not a cookie). Requests that do not carry the bearer token
must name the API by exactly the host it listens on: a page elsewhere cannot rebind a
name of its own to 127.0.0.1 and read the API.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from wslnet.contract import document
from wslnet.forward.control.sessions import (
    SESSION_HEADER,
    Sessions,
    allowed_hosts,
    host_allowed,
)
from wslnet.forward.core.log import Event, EventLog, Level

# What changed, and what went wrong, once each (denied/rejected arrive rate-limited).
SHOWN_EVENTS: frozenset[Event] = frozenset({
    "listening", "rule-removed", "rule-failed", "auto-add", "auto-remove", "auto-failed",
    "auto-restart", "reloaded", "reload-rejected", "resolved", "resolve-failed", "denied",
    "rejected", "target-moved", "firewall-hint", "no-ipv6", "stopping",
})  # fmt: skip
# The page's files: (path, package file, content type). No secret in any of them.
ASSETS = (
    ("/", "dashboard.html", "text/html"),
    ("/dashboard.js", "dashboard.js", "text/javascript"),
    ("/dashboard.css", "dashboard.css", "text/css"),
    ("/favicon.ico", "favicon.svg", "image/svg+xml"),
)
OPEN = frozenset({("GET", path) for path, _, _ in ASSETS} | {("POST", "/v1/session")})


@dataclass(frozen=True)
class Refusal:
    status: int
    why: str


class Dashboard:
    def __init__(self, log: EventLog, bound_host: str) -> None:
        self.names = allowed_hosts(bound_host)
        self.port = 0  # set once bound
        self.sessions = Sessions()
        self.events: collections.deque[dict[str, object]] = collections.deque(maxlen=200)
        # Read once, at start: no file I/O on the loop per request.
        files = resources.files("wslnet.forward.control")
        self.assets = {
            path: (files.joinpath(name).read_bytes(), ctype) for path, name, ctype in ASSETS
        }
        log.observers.append(self._observe)

    def _observe(self, level: Level, event: Event, msg: str, fields: dict[str, object]) -> None:
        if event in SHOWN_EVENTS:
            shown = {k: str(v) for k, v in fields.items()}
            if msg:
                shown["msg"] = msg
            self.events.append({"ts": time.time(), "level": level, "event": event, "fields": shown})

    def routes(self) -> list[web.RouteDef]:
        files = [web.get(path, self.asset) for path in self.assets]
        return [*files, web.post("/v1/session", self.session),
                web.get("/v1/events", self.events_doc)]  # fmt: skip

    def login_url(self, base: str) -> str:
        # In the fragment: a browser sends it to no server, and no log holds it.
        return f"{base}/#code={self.sessions.new_code()}"

    def refusal(self, request: web.Request) -> Refusal | None:
        """Why a request without the bearer token is refused, or None if it is not."""
        if not host_allowed(request.host, self.names, self.port):
            return Refusal(403, "Host is not the name this API listens on (DNS rebinding?)")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"http://{request.host}":
            return Refusal(403, "a request from another page is refused")
        if (request.method, request.path) in OPEN:
            return None
        if not self.sessions.valid(request.headers.get(SESSION_HEADER, "")):
            return Refusal(401, "a bearer token or a dashboard session is required "
                           "(wslnet dashboard)")  # fmt: skip
        return None

    async def asset(self, request: web.Request) -> web.Response:
        body, ctype = self.assets[request.path]
        return web.Response(body=body, content_type=ctype, charset="utf-8")

    async def session(self, request: web.Request) -> web.Response:
        """The page trades the link's one-time code for a session token."""
        try:
            code = json.loads(await request.read()).get("code")
        except (ValueError, AttributeError):
            code = None
        token = self.sessions.redeem(code) if isinstance(code, str) else None
        if token is None:
            why = "this login link was used already, or is unknown: run `wslnet dashboard`"
            return web.json_response({"error": why}, status=403)
        return web.json_response(document(token=token, header=SESSION_HEADER))

    async def events_doc(self, request: web.Request) -> web.Response:
        return web.json_response(document(events=list(self.events)))
