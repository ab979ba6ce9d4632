"""Proxy settings: the environment variables programs read, and apt's proxy lines.

A proxy URL may carry a user name and password (`http://user:pw@host:port`); a Proxy
keeps only the masked URL, so no renderer, log or report can show the password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_APT = re.compile(r'^\s*Acquire::(https?|ftp)::Proxy\s+"([^"]*)"\s*;', re.I)
MASK = "***"
# The user-info of a URL: after `scheme://`, up to the last `@` before the host's end
# (a password may itself contain `@`).
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://)([^/?#\s]*)@(?=[^/?#\s@]*(?:[/?#\s]|$))")


@dataclass(frozen=True)
class Proxy:
    source: str  # HTTP_PROXY, or the apt file and line
    url: str  # with any user-info masked
    host: str
    port: int
    masked: bool = False  # the URL had a user name or password, replaced by ***

    @property
    def loopback(self) -> bool:
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


def mask_url(text: str) -> tuple[str, int]:
    """`text` with the user-info of every URL in it replaced by ***, and how many."""
    return _USERINFO.subn(lambda m: f"{m[1]}{MASK}@", text)


def parse_url(source: str, url: str) -> Proxy | None:
    """`http://user:pw@127.0.0.1:3128`, `127.0.0.1:3128` or `socks5h://[::1]:1080`."""
    text = url.strip()
    if not text or text.upper() == "DIRECT":
        return None
    bare = "://" not in text  # `user:pw@host:port`, as apt and curl take it
    if bare:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    default = 1080 if parts.scheme.startswith("socks") else 443 if parts.scheme == "https" else 80
    masked, count = mask_url(text)
    shown = masked.removeprefix("http://") if bare else masked
    return Proxy(source, shown, host, port or default, masked=count > 0)


def parse_apt(name: str, text: str) -> list[Proxy]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        m = _APT.match(line)
        if m:
            proxy = parse_url(f"{name}:{number}", m[2])
            if proxy is not None:
                found.append(proxy)
    return found
