"""Accepting and dialling, chosen once at start for the event loop in use.

Selector loops (Linux, macOS; uvloop) can watch descriptors: accepts are batched from a
reader callback and targets dialled by a callback Dialer, with no task or future per
connection. Windows' proactor loop cannot: it gets an accept task per listener and a
dial task per connection.
"""

from __future__ import annotations

import abc
import asyncio
import socket
import sys
from collections.abc import Callable

from wslnet.forward.core.conn import Connection
from wslnet.forward.core.resolve import ResolveError, Resolver
from wslnet.forward.core.table import Listener
from wslnet.forward.data.dial import Dialer, Ends, connect_reason, dial_async, local_address
from wslnet.forward.data.relay import Poller

_ACCEPT_BATCH = 64  # accepts per wake-up before other work gets a turn
_RETRY_ACCEPT = 0.1  # seconds before accepting again after a failure (fd limit)

OnAccept = Callable[[Listener, socket.socket, object], None]
OnAcceptError = Callable[[Listener, OSError], None]


class Strategy(abc.ABC):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        resolver: Resolver,
        connect_timeout: float,
        on_accept: OnAccept,
        on_error: OnAcceptError,
        own: set[Ends],
        poller: Poller | None = None,
    ) -> None:
        self.loop = loop
        self.resolver = resolver
        self.connect_timeout = connect_timeout
        self.on_accept = on_accept
        self.on_error = on_error
        self.poller = poller  # the Linux engine's epoll; dialled sockets join it for good
        self.own = own  # both ends of each dialled socket, to recognise a loop back to us

    @abc.abstractmethod
    def watch(self, lst: Listener) -> None:
        """Starts accepting on a listener."""

    @abc.abstractmethod
    def unwatch(self, lst: Listener) -> None:
        """Stops accepting (the caller closes the socket)."""

    @abc.abstractmethod
    def dial(self, conn: Connection) -> None:
        """Connects to the rule's target; the connection hears `connected` or `failed`."""


class CallbackStrategy(Strategy):
    def watch(self, lst: Listener) -> None:
        self.loop.add_reader(lst.sock.fileno(), self._acceptable, lst)

    def unwatch(self, lst: Listener) -> None:
        if lst.sock.fileno() >= 0:
            self.loop.remove_reader(lst.sock.fileno())

    def _acceptable(self, lst: Listener) -> None:
        sock = lst.sock
        for _ in range(_ACCEPT_BATCH):
            try:
                csock, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.on_error(lst, exc)
                # Stop watching for a moment, or the loop would spin on the same error.
                self.loop.remove_reader(sock.fileno())
                self.loop.call_later(_RETRY_ACCEPT, self._resume, lst)
                return
            self.on_accept(lst, csock, addr)

    def _resume(self, lst: Listener) -> None:
        if lst.sock.fileno() >= 0 and not lst.rule.closing:
            self.watch(lst)

    def dial(self, conn: Connection) -> None:
        addrs = self.resolver.cached(conn.rule.rule.target)
        if addrs is None:  # a name to look up first
            conn.task = self.loop.create_task(self._resolve_then_dial(conn))
            return
        timeout = self.connect_timeout
        conn.dialer = Dialer(self.loop, addrs, timeout, conn.dialed, self.poller, self.own)
        conn.dialer.start()

    async def _resolve_then_dial(self, conn: Connection) -> None:
        try:
            addrs = await self.resolver.resolve(conn.rule.rule.target)
        except ResolveError as exc:
            conn.task = None
            conn.failed(f"dns: {exc}")
            return
        conn.task = None
        timeout = self.connect_timeout
        conn.dialer = Dialer(self.loop, addrs, timeout, conn.dialed, self.poller, self.own)
        conn.dialer.start()


class TaskStrategy(Strategy):
    def watch(self, lst: Listener) -> None:
        lst.task = self.loop.create_task(self._accept(lst))

    def unwatch(self, lst: Listener) -> None:
        if lst.task is not None:
            lst.task.cancel()

    async def _accept(self, lst: Listener) -> None:
        while True:
            try:
                csock, addr = await self.loop.sock_accept(lst.sock)
            except OSError as exc:
                self.on_error(lst, exc)
                await asyncio.sleep(_RETRY_ACCEPT)
                continue
            self.on_accept(lst, csock, addr)

    def dial(self, conn: Connection) -> None:
        conn.task = self.loop.create_task(self._dial(conn))

    async def _dial(self, conn: Connection) -> None:
        try:
            addrs = await self.resolver.resolve(conn.rule.rule.target)
            tsock = await dial_async(self.loop, addrs, self.connect_timeout)
        except ResolveError as exc:
            conn.task = None
            conn.failed(f"dns: {exc}")
            return
        except (OSError, asyncio.TimeoutError) as exc:
            conn.task = None
            conn.failed(connect_reason(exc))
            return
        conn.task = None
        # After the fact: the proactor connects for us.
        conn.ends = (local_address(tsock), local_address(tsock, peer=True))
        self.own.add(conn.ends)
        conn.connected(tsock)


def choose(
    loop: asyncio.AbstractEventLoop,
    resolver: Resolver,
    connect_timeout: float,
    on_accept: OnAccept,
    on_error: OnAcceptError,
    own: set[Ends],
    poller: Poller | None,
) -> Strategy:
    """Proactor loops (Windows) cannot watch descriptors; the rest can."""
    kind = TaskStrategy if sys.platform == "win32" else CallbackStrategy
    return kind(loop, resolver, connect_timeout, on_accept, on_error, own, poller)
