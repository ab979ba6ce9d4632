"""/proc/net/arp: the kernel's IPv4 neighbour table. After a connect attempt to an
address on a directly attached network, its entry tells whether that address answered
ARP (a complete entry) or not (an incomplete one): no root needed."""

from __future__ import annotations

from dataclasses import dataclass

from wslnet.facts import Problem

ATF_COM = 0x2  # the entry is complete: the neighbour answered


@dataclass(frozen=True)
class Neighbour:
    address: str
    flags: int
    mac: str
    device: str

    @property
    def answered(self) -> bool:
        return bool(self.flags & ATF_COM)


def parse(text: str) -> tuple[list[Neighbour], list[Problem]]:
    found: list[Neighbour] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "IP":
            continue
        try:
            found.append(Neighbour(fields[0], int(fields[2], 16), fields[3], fields[5]))
        except (IndexError, ValueError):
            problems.append(Problem(number, line, "not a neighbour line"))
    return found, problems


def lookup(entries: list[Neighbour], address: str) -> Neighbour | None:
    return next((n for n in entries if n.address == address), None)
