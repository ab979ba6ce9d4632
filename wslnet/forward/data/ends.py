"""Why a connection or a UDP session ended, as a value: decided where it happens (a
relay, a dialer, the core), counted and logged by kind, shown as text only in the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EndKind = Literal[
    "closed",  # both directions reached their end of file
    "idle-timeout",
    "shutdown",
    "connect-refused",
    "connect-timeout",
    "connect-unreachable",
    "connect-error",
    "connect-dns",
    "client-reset",
    "target-reset",
    "client-error",
    "target-error",
    "client-closed",  # closed by the loop without passing an end of file
    "target-closed",
    "target-unreachable",  # UDP: the target answered ICMP port unreachable
    "evicted",  # UDP: the longest-idle session, to make room for a new client
    "error",  # the relay could not take the sockets over
]
# The ways a connection ends when nothing went wrong: logged as info, not counted as errors.
ORDINARY: frozenset[EndKind] = frozenset({"closed", "idle-timeout", "shutdown"})


@dataclass(frozen=True, slots=True)
class End:
    kind: EndKind
    detail: str = ""  # e.g. the strerror, or the resolver's message

    @property
    def ordinary(self) -> bool:
        return self.kind in ORDINARY

    def __str__(self) -> str:
        """The `reason` field of the log, worded as it always has been."""
        if not self.detail:
            return self.kind
        if self.kind == "target-unreachable":
            return f"{self.kind} ({self.detail})"
        return f"{self.kind}: {self.detail}"


# The common ends, made once: ending a connection allocates nothing.
CLOSED = End("closed")
IDLE_TIMEOUT = End("idle-timeout")
SHUTDOWN = End("shutdown")
