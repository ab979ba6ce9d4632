"""What every relay engine provides: byte counters, a done future, abort."""

from __future__ import annotations

import abc
import asyncio
import errno
import socket
import struct
import sys
from collections.abc import Callable
from typing import Protocol

# Enough for one read chunk plus a full write buffer in each direction (see README).
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024

_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def side_error(side: str, exc: BaseException) -> str:
    """Names why a connection ended from an error seen on one side."""
    if isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS:
        return f"{side}-reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{side}-error: {exc.strerror or errno.errorcode.get(exc.errno, exc.errno)}"
    return f"{side}-error: {exc}"


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


class Relay(abc.ABC):
    """Moves bytes between a client and a target socket until both directions end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_end: Callable[[str], None]) -> None:
        self.loop = loop
        self.on_end = on_end  # called once, with why the connection ended
        self.ended = False

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
    def abort(self, reason: str) -> None:
        """Resets both sides now and ends with `reason`."""

    @abc.abstractmethod
    def close(self, reason: str) -> None:
        """Closes both sides in order (FIN, not reset) and ends with `reason`."""

    def _finish(self, reason: str) -> None:
        # A plain callback, not a future: one less object and loop turn per connection.
        if not self.ended:
            self.ended = True
            self.on_end(reason)
