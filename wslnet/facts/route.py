"""/proc/net/route (default gateway) and `ip rule` output (mirrored-mode fingerprints)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from wslnet.facts import Problem

RTF_GATEWAY = 0x2


@dataclass(frozen=True)
class Route:
    interface: str
    destination: str
    gateway: str
    mask: str
    metric: int

    @property
    def is_default(self) -> bool:
        return self.destination == "0.0.0.0" and self.mask == "0.0.0.0"


def _ip(hex_word: str) -> str:
    return socket.inet_ntoa(struct.pack("<I", int(hex_word, 16)))


def parse_proc_route(text: str) -> tuple[list[Route], list[Problem]]:
    routes: list[Route] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "Iface":
            continue
        try:
            flags = int(fields[3], 16)
            gateway = _ip(fields[2]) if flags & RTF_GATEWAY else "0.0.0.0"
            routes.append(Route(fields[0], _ip(fields[1]), gateway, _ip(fields[7]), int(fields[6])))
        except (IndexError, ValueError, struct.error):
            problems.append(Problem(number, line, "not a route line"))
    return routes, problems


def default_gateways(routes: list[Route]) -> list[Route]:
    return sorted(
        (r for r in routes if r.is_default and r.gateway != "0.0.0.0"), key=lambda r: r.metric
    )


def mirrored_rules(text: str) -> list[str]:
    """The `ip rule` lines that WSL adds in mirrored mode (lookup tables 127 and 128)."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if "lookup" in words:
            table = words[words.index("lookup") + 1] if words[-1] != "lookup" else ""
            if table in ("127", "128") or ("iif" in words and "loopback0" in words):
                found.append(line.strip())
    return found
