"""Proxy settings: the environment variables programs read, and apt's proxy lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_APT = re.compile(r'^\s*Acquire::(https?|ftp)::Proxy\s+"([^"]*)"\s*;', re.I)


@dataclass(frozen=True)
class Proxy:
    source: str  # HTTP_PROXY, or the apt file and line
    url: str
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


def parse_url(source: str, url: str) -> Proxy | None:
    """`http://user:pw@127.0.0.1:3128`, `127.0.0.1:3128` or `socks5h://[::1]:1080`."""
    text = url.strip()
    if not text or text.upper() == "DIRECT":
        return None
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    default = 1080 if parts.scheme.startswith("socks") else 443 if parts.scheme == "https" else 80
    return Proxy(source, url.strip(), host, port or default)


def parse_apt(name: str, text: str) -> list[Proxy]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        m = _APT.match(line)
        if m:
            proxy = parse_url(f"{name}:{number}", m[2])
            if proxy is not None:
                found.append(proxy)
    return found
