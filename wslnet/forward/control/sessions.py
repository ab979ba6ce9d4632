"""Who may use the dashboard: one-time login codes, session tokens, and the Host check.

No cookie authorises anything: cookies are scoped to the host, not the port, so every
other server on 127.0.0.1 would be sent one. The login link carries a one-time code in
its URL fragment (never sent to any server, never in a log); the page trades it for a
session token that it keeps in sessionStorage (per origin, so per forwarder) and sends
as a header. A foreign page can neither read that storage nor set that header on our
origin without a CORS preflight, which the API never answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass, field

SESSION_HEADER = "X-Wslnet-Session"
CODE_LIFETIME = 300.0  # seconds a login code may wait before it is used
MAX_PENDING = 32  # login codes not used yet; the oldest goes first
MAX_SESSIONS = 64

# frame-ancestors: no page may frame the dashboard (clickjacking); everything from here.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def split_host(header: str) -> tuple[str, int | None] | None:
    """A Host header as (host, port or None); None when it is not one host[:port]."""
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        host, rest = header[: end + 1], header[end + 1 :]
    else:
        host, sep, after = header.partition(":")
        rest = sep + after
    if not rest:
        return host.lower(), None
    port = rest[1:]
    if rest[0] != ":" or not (port.isascii() and port.isdigit()) or len(port) > 5:
        return None
    return host.lower(), int(port)


def allowed_hosts(bound: str) -> frozenset[str]:
    """The names a browser may use for an API bound to `bound`: exactly its address, and
    `localhost` when that is a loopback or wildcard address."""
    try:
        addr = ipaddress.ip_address(bound)
    except ValueError:
        return frozenset({bound.lower()})
    own = f"[{addr}]" if addr.version == 6 else str(addr)
    if addr.is_unspecified:
        return frozenset({"localhost", "127.0.0.1", "[::1]", own})
    if addr.is_loopback:
        return frozenset({"localhost", own})
    return frozenset({own})


def host_allowed(header: str, names: frozenset[str], port: int) -> bool:
    """Exactly one of `names`, with our port or none: `127.0.0.1.evil.example` and
    `[::1].evil.example` are other names that a rebinding attacker controls."""
    parsed = split_host(header)
    return parsed is not None and parsed[0] in names and parsed[1] in (None, port)


@dataclass
class Sessions:
    """Login codes (one use each, short-lived) and the session tokens they became."""

    codes: dict[str, float] = field(default_factory=dict)  # code -> when it was made
    tokens: list[str] = field(default_factory=list)  # oldest first

    def new_code(self, now: float | None = None) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = time.monotonic() if now is None else now
        while len(self.codes) > MAX_PENDING:
            del self.codes[next(iter(self.codes))]
        return code

    def redeem(self, code: str, now: float | None = None) -> str | None:
        """A new session token for a valid code, which is then spent; else None."""
        found = next((c for c in self.codes if _same(c, code)), None)
        if found is None:
            return None
        made = self.codes.pop(found)
        if (time.monotonic() if now is None else now) - made > CODE_LIFETIME:
            return None
        token = secrets.token_urlsafe(32)
        self.tokens.append(token)
        del self.tokens[:-MAX_SESSIONS]
        return token

    def valid(self, token: str) -> bool:
        return bool(token) and any(_same(t, token) for t in self.tokens)


def _same(ours: str, given: str) -> bool:
    # Headers arrive as str, undecodable bytes as surrogates: compare bytes, in constant time.
    return hmac.compare_digest(ours.encode(), given.encode("utf-8", "surrogateescape"))
