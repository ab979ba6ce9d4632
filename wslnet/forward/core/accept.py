"""Accepting and dialling, chosen once at start for the event loop in use.

Selector loops (Linux, macOS; uvloop) can watch descriptors: accepts are batched from a
reader callback and targets dialled by a callback Dialer, with no task or future per
connection. Windows' proactor loop cannot: one overlapped accept per listener is chained
from its own completion, as asyncio's proactor servers do, and each dial is an overlapped
connect; still no task per connection.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import socket
from collections.abc import Callable
from typing import Any

from wslnet.forward.core.conn import Connection
from wslnet.forward.core.resolve import ResolveError, Resolver
from wslnet.forward.core.table import ListeningSocket
from wslnet.forward.data.address import Address
from wslnet.forward.data.dial import CompletionDialer, Dialer, Ends, client_went_away
from wslnet.forward.data.ends import End
from wslnet.forward.data.loops import Proactor, proactor_of, settle_accept_task
from wslnet.forward.data.relay import Poller

_ACCEPT_BATCH = 64  # accepts per wake-up before other work gets a turn
_RETRY_ACCEPT = 0.1  # seconds before accepting again after a failure (fd limit)

OnAccept = Callable[[ListeningSocket, socket.socket, object], None]
OnAcceptError = Callable[[ListeningSocket, OSError], None]


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
        # The TCP ports we listen on: only a dial to one of them can arrive back at us, so
        # only those dials keep their ends in `own` (two system calls each).
        self.own_ports: set[int] = set()

    @abc.abstractmethod
    def watch(self, lst: ListeningSocket) -> None:
        """Starts accepting on a listener."""

    @abc.abstractmethod
    def unwatch(self, lst: ListeningSocket) -> None:
        """Stops accepting (the caller closes the socket)."""

    def dial(self, conn: Connection) -> None:
        """Connects to the rule's target; the connection hears `dialed` or `failed`."""
        addrs = self.resolver.cached(conn.rule.rule.target)
        if addrs is None:  # a name to look up first
            conn.task = self.loop.create_task(self._resolve_then_dial(conn))
            return
        self._dial(conn, addrs)

    async def _resolve_then_dial(self, conn: Connection) -> None:
        try:
            addrs = await self.resolver.resolve(conn.rule.rule.target)
        except ResolveError as exc:
            conn.task = None
            conn.failed(End("connect-dns", str(exc)))
            return
        conn.task = None
        self._dial(conn, addrs)

    def _own(self, conn: Connection) -> set[Ends] | None:
        """Where the dial keeps its ends: `own` if it might come back to us, else none."""
        return self.own if conn.rule.rule.target.port in self.own_ports else None

    @abc.abstractmethod
    def _dial(self, conn: Connection, addrs: list[Address]) -> None: ...


class CallbackStrategy(Strategy):
    def watch(self, lst: ListeningSocket) -> None:
        self.loop.add_reader(lst.sock.fileno(), self._acceptable, lst)

    def unwatch(self, lst: ListeningSocket) -> None:
        if lst.sock.fileno() >= 0:
            self.loop.remove_reader(lst.sock.fileno())

    def _acceptable(self, lst: ListeningSocket) -> None:
        sock = lst.sock
        for _ in range(_ACCEPT_BATCH):
            try:
                csock, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.on_error(lst, exc)
                if client_went_away(exc):
                    continue  # that client only: the next one may be waiting
                # Stop watching for a moment, or the loop would spin on the same error.
                self.loop.remove_reader(sock.fileno())
                self.loop.call_later(_RETRY_ACCEPT, self._resume, lst)
                return
            self.on_accept(lst, csock, addr)

    def _resume(self, lst: ListeningSocket) -> None:
        if lst.sock.fileno() >= 0 and not lst.rule.closing:
            self.watch(lst)

    def _dial(self, conn: Connection, addrs: list[Address]) -> None:
        timeout = self.connect_timeout
        conn.dialer = Dialer(self.loop, addrs, timeout, conn.dialed, self.poller, self._own(conn))
        conn.dialer.start()


class CompletionStrategy(Strategy):
    def __init__(self, proactor: Proactor, *args: Any) -> None:
        super().__init__(*args)
        self.proactor = proactor

    def watch(self, lst: ListeningSocket) -> None:
        if lst.sock.fileno() < 0 or lst.rule.closing:
            return
        try:
            lst.accepting = self.proactor.accept(lst.sock)
        except OSError as exc:
            if client_went_away(exc):  # AcceptEx raised it at once (overlapped.c): again now
                self.on_error(lst, exc)
                self.loop.call_soon(self.watch, lst)
                return
            self._accept_failed(lst, exc)
            return
        lst.accepting.add_done_callback(functools.partial(self._accepted, lst))

    def unwatch(self, lst: ListeningSocket) -> None:
        if lst.accepting is not None:
            lst.accepting.cancel()
            lst.accepting = None

    def _accepted(self, lst: ListeningSocket, fut: asyncio.Future[Any]) -> None:
        lst.accepting = None
        if fut.cancelled():
            return
        try:
            csock, addr = fut.result()
        except OSError as exc:
            settle_accept_task(self.loop, fut)
            if client_went_away(exc):  # e.g. WinError 64: accept again at once
                self.on_error(lst, exc)
                self.watch(lst)
                return
            self._accept_failed(lst, exc)
            return
        self.watch(lst)  # the next accept is posted before this one is served
        self.on_accept(lst, csock, addr)

    def _accept_failed(self, lst: ListeningSocket, exc: OSError) -> None:
        self.on_error(lst, exc)
        self.loop.call_later(_RETRY_ACCEPT, self.watch, lst)  # no spinning on one error

    def _dial(self, conn: Connection, addrs: list[Address]) -> None:
        timeout = self.connect_timeout
        own = self._own(conn)
        dialer = CompletionDialer(self.loop, self.proactor, addrs, timeout, conn.dialed, own)
        conn.dialer = dialer
        dialer.start()


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
    args = (loop, resolver, connect_timeout, on_accept, on_error, own, poller)
    proactor = proactor_of(loop)
    if proactor is not None:
        return CompletionStrategy(proactor, *args)
    return CallbackStrategy(*args)
