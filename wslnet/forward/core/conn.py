"""One TCP connection, from accept to end: dialled, relayed, ended exactly once."""

from __future__ import annotations

import asyncio
import enum
import socket
import time
from typing import TYPE_CHECKING, Protocol

from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import Resolver
from wslnet.forward.core.rules import format_addr
from wslnet.forward.core.stats import end_level
from wslnet.forward.core.table import DialOutcome
from wslnet.forward.data.dial import BaseDialer, Ends, local_address
from wslnet.forward.data.ends import End
from wslnet.forward.data.relay import Relay, RelayFactory, set_reset_on_close

if TYPE_CHECKING:
    from wslnet.forward.core.table import RuleState


class State(enum.IntEnum):
    """An IntEnum, not an Enum: looking a move up hashes the state twice per connection,
    and Enum's __hash__ is Python code while int's is not."""

    DIALLING = 1  # a Dialer or a task works on the target
    RELAYING = 2  # a Relay owns both sockets
    ENDED = 3


# The moves a connection may make (h11's style): anything else is a bug, and raises.
MOVES: dict[State, frozenset[State]] = {
    State.DIALLING: frozenset({State.RELAYING, State.ENDED}),
    State.RELAYING: frozenset({State.ENDED}),
    State.ENDED: frozenset(),
}


class IllegalMove(RuntimeError):
    pass


class Owner(Protocol):
    """What a connection needs from the server that accepted it."""

    loop: asyncio.AbstractEventLoop
    resolver: Resolver
    relay_factory: RelayFactory
    own: set[Ends]  # both ends of each connection it dialled

    def ended(self, conn: Connection, reason: End) -> None: ...


class Connection:
    """States: dialling, relaying, ended (see MOVES). `end` is the one way out."""

    __slots__ = (
        "client",
        "csock",
        "dialer",
        "ends",
        "id",
        "idle",
        "owner",
        "relay",
        "rule",
        "seen",
        "started",
        "state",
        "target",
        "task",
    )

    def __init__(
        self,
        conn_id: int,
        rule: RuleState,
        client: object,
        csock: socket.socket,
        started: float,
        owner: Owner,
    ) -> None:
        self.id = conn_id
        self.rule = rule
        self.client = client  # the peer address as accept() gave it; formatted when logged
        self.csock = csock
        self.started = started
        self.owner = owner
        self.state = State.DIALLING
        self.target: object = rule.rule.target  # the address dialled, once known
        self.relay: Relay | None = None
        self.dialer: BaseDialer | None = None
        self.task: asyncio.Task[None] | None = None
        self.ends: Ends | None = None  # of the connection to the target, once dialled
        self.idle = 0.0  # seconds without traffic, as the idle sweep counts them
        self.seen = 0  # bytes moved at the last sweep

    # -- dialling ----------------------------------------------------------------------
    def move(self, to: State) -> None:
        if to not in MOVES[self.state]:
            raise IllegalMove(
                f"connection {self.id}: {self.state.name.lower()} -> {to.name.lower()}"
            )
        self.state = to

    def dialed(self, tsock: socket.socket | None, reason: End | None) -> None:
        """The Dialer's verdict: a connected socket, or why there is none."""
        dialer = self.dialer
        if dialer is not None:
            self.target = dialer.sockaddr
            self.ends = dialer.ends
            self.dialer = None
        if tsock is None:
            self.failed(reason or End("connect-error"))
        else:
            self.connected(tsock, dialer.early_read if dialer is not None else True)

    def failed(self, reason: End) -> None:
        self.rule.dial_failed = (time.monotonic(), DialOutcome(False, time.time(), str(reason)))
        self.owner.resolver.forget(self.rule.rule.target)
        self.end(reason, reset=True)

    def connected(self, tsock: socket.socket, spoke: bool = True) -> None:
        self.move(State.RELAYING)
        self.rule.dial_ok_since = self.started  # see RuleState.last_dial: nothing to build
        owner = self.owner
        self.relay = owner.relay_factory(owner.loop, self.csock, tsock, self.relay_ended, spoke)
        self.relay.start()

    # -- ending ------------------------------------------------------------------------
    def relay_ended(self, reason: End) -> None:
        self.end(reason)

    def end(self, reason: End, reset: bool = False) -> None:
        """The one place a connection ends: its own sockets closed, the owner told once."""
        self.move(State.ENDED)
        if self.ends is not None:
            self.owner.own.discard(self.ends)
        if self.relay is None:  # never relayed: the client socket is still ours
            if reset:
                set_reset_on_close(self.csock)
            self.csock.close()
        self.owner.ended(self, reason)

    def abort(self, reason: End) -> None:
        """Ends now, with a reset, while dialling or relaying."""
        if self.state is State.ENDED:
            raise IllegalMove(f"connection {self.id}: aborted once ended")
        if self.relay is not None:
            self.relay.abort(reason)  # the relay calls back relay_ended
            return
        if self.dialer is not None:
            self.dialer.cancel()
            self.dialer = None
        if self.task is not None:
            self.task.cancel()
        self.end(reason, reset=True)


def dialled_by(own: set[Ends], csock: socket.socket, addr: object) -> bool:
    """Whether an accepted connection is one the forwarder dialled itself (same two ends;
    a client may well use the same local port towards another address): a loop."""
    try:
        ends = ((str(addr[0]), int(addr[1])), local_address(csock))  # type: ignore[index]
    except (OSError, TypeError, IndexError):
        return False
    return ends in own


def log_end(log: EventLog, conn: Connection, reason: End, up: int, down: int) -> None:
    """The one `conn` line a connection leaves (warning unless it ended the usual way)."""
    level = end_level(reason)
    if log.enabled(level):
        log(
            level,
            "conn",
            id=conn.id,
            rule=conn.rule.id,
            client=format_addr(conn.client),
            target=format_addr(conn.target),
            up=up,
            down=down,
            duration=round(time.monotonic() - conn.started, 6),
            reason=str(reason),
        )
