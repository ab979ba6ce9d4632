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


def route_for(routes: list[Route], address: str) -> Route | None:
    """The route the kernel's main table would pick for an IPv4 address: the longest
    matching prefix, then the lowest metric; None when nothing matches (no route)."""
    try:
        want = struct.unpack("!I", socket.inet_aton(address))[0]
    except OSError:
        return None
    best: Route | None = None
    best_key = (-1, 0)
    for r in routes:
        try:
            dest = struct.unpack("!I", socket.inet_aton(r.destination))[0]
            mask = struct.unpack("!I", socket.inet_aton(r.mask))[0]
        except OSError:
            continue
        if want & mask != dest & mask:
            continue
        key = (bin(mask).count("1"), -r.metric)
        if key > best_key:
            best, best_key = r, key
    return best


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
