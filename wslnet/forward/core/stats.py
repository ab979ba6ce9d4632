"""What the forwarder counts per rule, the same for TCP connections and UDP sessions.

One meaning per counter, for both protocols (the /metrics help text says the same):
- `accepted`: admitted (past the allow list, the limit and the loop check); counted
  once admitted, so refused arrivals are never in it;
- `denied`: refused for who it is: not on the allow list, or no usable peer address;
- `rejected`: refused for the forwarder's state: over the limit, or a forwarding loop;
- `ended[kind]`: admitted ones that ended other than closed, idle-timeout or shutdown.
Arrivals = accepted + denied + rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from wslnet.forward.core.admit import Refusal
from wslnet.forward.core.log import Level
from wslnet.forward.data.ends import ORDINARY, End


def end_level(end: End) -> Level:
    """Connections and sessions that end the ordinary way are info; the rest, warnings."""
    return "info" if end.kind in ORDINARY else "warning"


@dataclass
class Counters:
    """Totals of a rule: connections (TCP) or sessions (UDP) and the bytes they moved.

    Bytes of finished connections only; a rule adds what its open ones have moved."""

    accepted: int = 0
    rejected: int = 0  # over --max-conns / --udp-max-sessions, or a loop
    denied: int = 0  # not on the allow list, or no peer address
    up: int = 0
    down: int = 0
    ended: Counter[str] = field(default_factory=Counter)  # bad ends, by End.kind

    def refused(self, refusal: Refusal) -> None:
        if refusal.denied:
            self.denied += 1
        else:
            self.rejected += 1

    def finished(self, end: End, up: int, down: int) -> None:
        self.up += up
        self.down += down
        if end.kind not in ORDINARY:
            self.ended[end.kind] += 1
