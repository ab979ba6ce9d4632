"""The forwarder's live dashboard (served by the API with --api): a page from the
package (no CDN, no build step) that polls the API.

The page holds no secret. `wslnet dashboard` asks the API (with the bearer token) for a
one-time login link, as Jupyter does with its token URL; following it sets an HttpOnly,
SameSite=Strict session cookie. API calls take that cookie or the bearer token; a
state-changing call with the cookie must also come from the page's own origin. Requests
whose Host is not a loopback name (or the API's own address) are refused: a web page
elsewhere cannot rebind a name of its own to 127.0.0.1 and read the API.
"""

from __future__ import annotations

import collections
import secrets
import time
from importlib import resources

from aiohttp import web

from wslnet.contract import document
from wslnet.forward.core.log import Event, EventLog, Level

COOKIE = "wslnet_session"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# What changed, and what went wrong, once each (denied/rejected arrive rate-limited).
SHOWN_EVENTS: frozenset[Event] = frozenset({
    "listening", "rule-removed", "rule-failed", "auto-add", "auto-remove", "auto-failed",
    "auto-restart", "reloaded", "reload-rejected", "resolved", "resolve-failed", "denied",
    "rejected", "target-moved", "firewall-hint", "no-ipv6", "stopping",
})  # fmt: skip


class Dashboard:
    def __init__(self, log: EventLog, bound_host: str) -> None:
        self.bound_host = bound_host
        self.logins: set[str] = set()  # one-time login tokens not used yet
        self.sessions: set[str] = set()
        self.events: collections.deque[dict[str, object]] = collections.deque(maxlen=200)
        # Read once, at start: no file I/O on the loop per request.
        page = resources.files("wslnet.forward.control").joinpath("dashboard.html")
        self.page = page.read_text(encoding="utf-8")
        log.observers.append(self._observe)

    def _observe(self, level: Level, event: Event, msg: str, fields: dict[str, object]) -> None:
        if event in SHOWN_EVENTS:
            shown = {k: str(v) for k, v in fields.items()}
            if msg:
                shown["msg"] = msg
            self.events.append({"ts": time.time(), "level": level, "event": event, "fields": shown})

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.index), web.get("/login", self.login),
                web.get("/v1/events", self.events_doc)]  # fmt: skip

    def login_url(self, base: str) -> str:
        token = secrets.token_urlsafe(24)
        self.logins.add(token)
        return f"{base}/login?t={token}"

    def host_allowed(self, request: web.Request) -> bool:
        host = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") else (
            request.host[1:].split("]", 1)[0]
        )  # fmt: skip
        return host in LOOPBACK_NAMES or host.startswith("127.") or host == self.bound_host

    def open_path(self, request: web.Request) -> bool:
        """The page and the login link need no credentials (neither holds a secret)."""
        return request.method == "GET" and request.path in ("/", "/login")

    def session_allows(self, request: web.Request) -> str | None:
        """None when the session cookie admits the request, else why not."""
        sid = request.cookies.get(COOKIE)
        if sid is None or sid not in self.sessions:
            return "a bearer token or a dashboard session is required (wslnet dashboard)"
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if origin != f"{request.scheme}://{request.host}":
                return "a state-changing call with the session cookie must come from the dashboard"
        return None

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")

    async def login(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("t", "")
        if token not in self.logins:
            return web.Response(
                status=403, text="this login link was used already, or is unknown: run "
                "`wslnet dashboard` for a new one\n",
            )  # fmt: skip
        self.logins.discard(token)
        sid = secrets.token_urlsafe(32)
        self.sessions.add(sid)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")
        return response

    async def events_doc(self, request: web.Request) -> web.Response:
        return web.json_response(document(events=list(self.events)))
