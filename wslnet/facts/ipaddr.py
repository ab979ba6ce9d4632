"""`ip -o addr` output (one line per address), as `wsl.exe ... ip -4 -o addr` prints it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wslnet.facts import Problem


@dataclass(frozen=True)
class Address:
    interface: str
    family: str  # inet, inet6
    address: str
    prefix: int


def parse_oneline(text: str) -> tuple[list[Address], list[Problem]]:
    out: list[Address] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        try:
            fam_at = next(i for i, w in enumerate(words) if w in ("inet", "inet6"))
            iface = words[1].rstrip(":").split("@")[0]
            addr, _, prefix = words[fam_at + 1].partition("/")
            ipaddress.ip_address(addr)
            out.append(Address(iface, words[fam_at], addr, int(prefix or 32)))
        except (StopIteration, IndexError, ValueError):
            problems.append(Problem(number, line, "not an `ip -o addr` line"))
    return out, problems
