"""What every relay engine shares: the rules of how a relay ends, byte counters, abort."""

from __future__ import annotations

import abc
import asyncio
import errno
import socket
import struct
import sys
from collections.abc import Callable
from typing import Literal, Protocol

from wslnet.forward.data.ends import CLOSED, End, EndKind

# Enough for one read chunk plus a full write buffer in each direction (see README).
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024

Side = Literal["client", "target"]
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


_RESET: dict[Side, End] = {"client": End("client-reset"), "target": End("target-reset")}
_ERROR: dict[Side, EndKind] = {"client": "client-error", "target": "target-error"}
CLOSED_BY_LOOP: dict[Side, End] = {"client": End("client-closed"), "target": End("target-closed")}


def side_error(side: Side, exc: BaseException) -> End:
    """Why a connection ended from an error seen on one side."""
    if isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS:
        return _RESET[side]
    if isinstance(exc, OSError) and exc.errno is not None:
        return End(_ERROR[side], exc.strerror or errno.errorcode.get(exc.errno, str(exc.errno)))
    return End(_ERROR[side], str(exc))


def set_reset_on_close(sock: socket.socket) -> None:
    """SO_LINGER 0: close() sends a reset, so the peer learns of the failure at once."""
    try:
        # struct linger is two ints on POSIX, two u_shorts on Windows.
        fmt = "HH" if sys.platform == "win32" else "ii"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack(fmt, 1, 0))
    except OSError:
        pass


class Poller(Protocol):
    """Edge-triggered readiness for sockets (the Linux engine's EdgePoller)."""

    write_events: int
    read_events: int

    def add(self, fd: int, handler: Callable[[int], None]) -> None: ...
    def set_handler(self, fd: int, handler: Callable[[int], None]) -> None: ...
    def forget(self, fd: int) -> None: ...


class Ending:
    """How a relay ends, whatever its engine: a direction ends at its end of file and
    passes it on (half-close); when both have, the connection ends CLOSED. An
    error or an abort ends it at once; the first reason given wins, and the owner hears
    it exactly once."""

    __slots__ = ("client_eof", "finished", "on_end", "reason", "target_eof")

    def __init__(self, on_end: Callable[[End], None]) -> None:
        self.on_end = on_end
        self.client_eof = False  # the client sent its FIN (the upstream direction is over)
        self.target_eof = False
        self.reason: End | None = None
        self.finished = False

    def eof(self, side: Side) -> bool:
        """Notes one side's end of file; True once both directions are over."""
        if side == "client":
            self.client_eof = True
        else:
            self.target_eof = True
        if self.client_eof and self.target_eof:
            self.claim(CLOSED)
            return True
        return False

    @property
    def both_eof(self) -> bool:
        return self.client_eof and self.target_eof

    def claim(self, reason: End) -> End:
        """Gives the reason the connection ends, unless an earlier one was given."""
        if self.reason is None:
            self.reason = reason
        return self.reason

    def finish(self) -> None:
        # A plain callback, not a future: one less object and loop turn per connection.
        if not self.finished:
            self.finished = True
            self.on_end(self.reason or CLOSED)


class Relay(abc.ABC):
    """Moves bytes between a client and a target socket until both directions end."""

    __slots__ = ("ending", "loop")  # and in each engine's: one per connection, held long

    def __init__(self, loop: asyncio.AbstractEventLoop, on_end: Callable[[End], None]) -> None:
        self.loop = loop
        self.ending = Ending(on_end)

    @property
    @abc.abstractmethod
    def up(self) -> int:
        """Bytes delivered from the client to the target."""

    @property
    @abc.abstractmethod
    def down(self) -> int:
        """Bytes delivered from the target to the client."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def abort(self, reason: End) -> None:
        """Resets both sides now and ends with `reason`."""

    @abc.abstractmethod
    def close(self, reason: End) -> None:
        """Closes both sides in order (FIN, not reset) and ends with `reason`."""


RelayFactory = Callable[
    [asyncio.AbstractEventLoop, socket.socket, socket.socket, Callable[[End], None], bool], Relay
]
"""Makes the engine's relay: (loop, client, target, on_end, target spoke while dialled)."""
