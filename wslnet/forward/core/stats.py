"""What the forwarder counts per rule, the same for TCP connections and UDP sessions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from wslnet.forward.core.log import Level

_ORDINARY_ENDS = ("closed", "idle-timeout", "shutdown")


def reason_key(reason: str) -> str:
    """The kind of an end reason, for counters: `connect-dns: ...` -> `connect-dns`."""
    return reason.split(":")[0].split(" (")[0]


def end_level(reason: str) -> Level:
    """Connections and sessions that end the ordinary way are info; the rest, warnings."""
    return "info" if reason in _ORDINARY_ENDS else "warning"


@dataclass
class Counters:
    """Totals of a rule: connections (TCP) or sessions (UDP) and the bytes they moved.

    Bytes of finished connections only; a rule adds what its open ones have moved."""

    accepted: int = 0
    rejected: int = 0  # over --max-conns or the UDP session cap
    denied: int = 0  # not on the allow list
    up: int = 0
    down: int = 0
    ended: Counter[str] = field(default_factory=Counter)  # bad ends, by reason_key

    def finished(self, reason: str, up: int, down: int) -> None:
        self.up += up
        self.down += down
        if reason not in _ORDINARY_ENDS:
            self.ended[reason_key(reason)] += 1
