"""Connecting to a target: each address in turn under one shared deadline, by callbacks
(no task per connection, which is most of the forwarder's work for short connections).
A Dialer watches a non-blocking connect on selector loops; a CompletionDialer posts an
overlapped connect on Windows' proactor (core/accept.py picks one for the loop).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from wslnet.forward.data.address import Address, SockAddr
from wslnet.forward.data.ends import End
from wslnet.forward.data.loops import Proactor
from wslnet.forward.data.relay import Poller

Ends = tuple[tuple[str, int], tuple[str, int]]  # (our address, the peer's) of a connection
_PENDING = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN)  # connect() goes on
_IN_PROGRESS = (0, *_PENDING)
OnDone = Callable[[socket.socket | None, End | None], None]  # (socket, None) or (None, why)
TIMEOUT = End("connect-timeout")
REFUSED = End("connect-refused")
UNREACHABLE = End("connect-unreachable")


ERROR_NETNAME_DELETED = 64  # winerror: the peer went away (AcceptEx's failure for it)


def client_went_away(exc: OSError) -> bool:
    """An accept that failed for one client alone, which reset before it was accepted:
    ECONNABORTED (POSIX), WinError 64 (AcceptEx; IocpProactor.accept's finish_accept
    passes it on unconverted, Lib/asyncio/windows_events.py)."""
    return isinstance(exc, (ConnectionAbortedError, ConnectionResetError)) or (
        getattr(exc, "winerror", None) == ERROR_NETNAME_DELETED
    )


# A ConnectEx that fails reports a Win32 code through GetOverlappedResult, which
# SetFromWindowsErr maps to an errno only for refused and aborted (Modules/overlapped.c;
# PC/errmap.h has no case for these: EINVAL). libuv maps them the same way.
_WIN32_CONNECT_ERRORS = {
    1225: REFUSED,  # ERROR_CONNECTION_REFUSED
    1231: UNREACHABLE,  # ERROR_NETWORK_UNREACHABLE
    1232: UNREACHABLE,  # ERROR_HOST_UNREACHABLE
    121: TIMEOUT,  # ERROR_SEM_TIMEOUT
}


def connect_reason(exc: BaseException) -> End:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return TIMEOUT
    win32 = _WIN32_CONNECT_ERRORS.get(getattr(exc, "winerror", None) or 0)
    if win32 is not None:
        return win32
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
    ):
        return REFUSED
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return UNREACHABLE
    if isinstance(exc, OSError):
        return End("connect-error", str(exc.strerror or exc))
    return End("connect-error", str(exc))


def _new_socket(family: int) -> socket.socket:
    if hasattr(socket, "SOCK_NONBLOCK"):  # saves the ioctl that setblocking() costs
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def local_address(sock: socket.socket, peer: bool = False) -> tuple[str, int]:
    """(host, port) of our end (or the peer's), comparable across accept and connect."""
    name = sock.getpeername() if peer else sock.getsockname()
    return str(name[0]), int(name[1])


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


class BaseDialer:
    """What both dialers share: the addresses left, the deadline, the verdict."""

    __slots__ = (
        "addrs",
        "deadline",
        "early_read",
        "ends",
        "last",
        "loop",
        "on_done",
        "own",
        "sock",
        "sockaddr",
        "timer",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        addrs: list[Address],
        timeout: float,
        on_done: OnDone,
        own: set[Ends] | None = None,
    ) -> None:
        self.loop = loop
        self.own = own
        self.ends: Ends | None = None  # (our address, the target's) of the socket tried
        self.addrs = list(reversed(addrs))
        self.deadline = loop.time() + timeout
        self.on_done = on_done
        self.sock: socket.socket | None = None
        self.sockaddr: SockAddr | None = None  # the address being tried, whole
        self.early_read = False  # the target spoke before the relay took over
        self.timer: asyncio.TimerHandle | None = None
        self.last = End("connect-error", "no address")

    def start(self) -> None:
        raise NotImplementedError

    def _next(self) -> socket.socket | None:
        """A fresh socket for the next address to try (now `sockaddr`); None when none
        is left."""
        while self.addrs:
            family, self.sockaddr = self.addrs.pop()
            try:
                return _new_socket(family)
            except OSError as exc:
                self.last = connect_reason(exc)
        return None

    def cancel(self) -> None:
        """Stops a connect in progress; on_done is not called."""
        raise NotImplementedError

    def _failed(self, err: BaseException) -> None:
        """One address failed: the next one, while time is left."""
        self.last = connect_reason(err)
        if self.loop.time() < self.deadline:
            self.start()
        else:
            self.on_done(None, self.last)


class Dialer(BaseDialer):
    """Tries each address in turn until one connects or the shared deadline passes.

    With a poller (the Linux engine) the new socket joins it for good: the relay that
    follows takes over its handler without another epoll_ctl. Both ends of each socket it
    tries are kept in `own` while it is tried, so the forwarder can tell its own
    connections arriving back at it (a forwarding loop) from a client's.
    """

    __slots__ = ("poller",)

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        addrs: list[Address],
        timeout: float,
        on_done: OnDone,
        poller: Poller | None = None,
        own: set[Ends] | None = None,
    ) -> None:
        super().__init__(loop, addrs, timeout, on_done, own)
        self.poller = poller

    def start(self) -> None:
        while (sock := self._next()) is not None:
            sockaddr = self.sockaddr
            assert sockaddr is not None
            err = sock.connect_ex(sockaddr)
            poller = self.poller
            if poller is not None and err in _PENDING and _connected(sock):
                err = 0  # loopback handshakes are often done before connect() returns
            if self.own is not None and err in _IN_PROGRESS:
                self.ends = (local_address(sock), (sockaddr[0], sockaddr[1]))
                self.own.add(self.ends)
            if err == 0 and poller is not None:
                poller.add(sock.fileno(), self._event)
                self.on_done(sock, None)
                return
            if err in _IN_PROGRESS:
                self.sock = sock
                if poller is not None:
                    poller.add(sock.fileno(), self._event)  # reports out once connected
                else:
                    self.loop.add_writer(sock.fileno(), self._writable)
                self.timer = self.loop.call_at(self.deadline, self._timeout)
                return
            sock.close()
            self.last = connect_reason(OSError(err, os.strerror(err)))
        self.on_done(None, self.last)

    def _event(self, events: int) -> None:
        if self.poller is None or self.sock is None:
            return
        if events & self.poller.read_events:
            self.early_read = True
        if events & self.poller.write_events:
            self._writable()

    def _writable(self) -> None:
        sock = self._release()
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            self.on_done(sock, None)
            return
        self._discard(sock)
        self._failed(OSError(err, os.strerror(err)))

    def _timeout(self) -> None:
        self._discard(self._release())
        self.on_done(None, TIMEOUT)

    def _discard(self, sock: socket.socket) -> None:
        if self.poller is not None:
            self.poller.forget(sock.fileno())
        if self.own is not None and self.ends is not None:
            self.own.discard(self.ends)
            self.ends = None
        sock.close()

    def _release(self) -> socket.socket:
        sock = self.sock
        assert sock is not None
        if self.poller is None:
            self.loop.remove_writer(sock.fileno())
        if self.timer is not None:
            self.timer.cancel()
        self.sock = self.timer = None
        return sock

    def cancel(self) -> None:
        """Stops a connect in progress; on_done is not called."""
        if self.sock is not None:
            self._discard(self._release())
        self.addrs.clear()


class CompletionDialer(BaseDialer):
    """The Dialer on Windows' proactor: an overlapped connect per address (ConnectEx binds
    the socket itself), cancelled when the deadline passes. Our end of the connection is
    known, and kept in `own`, once it is connected."""

    __slots__ = ("fut", "proactor")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proactor: Proactor,
        addrs: list[Address],
        timeout: float,
        on_done: OnDone,
        own: set[Ends] | None = None,
    ) -> None:
        super().__init__(loop, addrs, timeout, on_done, own)
        self.proactor = proactor
        self.early_read = True  # unknown here; only the Linux engine asks
        self.fut: asyncio.Future[Any] | None = None

    def start(self) -> None:
        while (sock := self._next()) is not None:
            try:
                fut = self.proactor.connect(sock, self.sockaddr)
            except OSError as exc:
                sock.close()
                self.last = connect_reason(exc)
                continue
            self.sock, self.fut = sock, fut
            self.timer = self.loop.call_at(self.deadline, self._timeout)
            fut.add_done_callback(self._done)
            return
        self.on_done(None, self.last)

    def _timeout(self) -> None:
        self.timer = None
        self.addrs.clear()
        self.last = TIMEOUT
        if self.fut is not None:
            self.fut.cancel()  # _done follows, with the future cancelled

    def _done(self, fut: asyncio.Future[Any]) -> None:
        sock = self.sock
        self.sock = self.fut = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if sock is None:  # cancelled by cancel(), which closed the socket
            return
        if fut.cancelled():
            sock.close()
            self.on_done(None, self.last)
            return
        exc = fut.exception()
        if exc is None:
            try:
                self.ends = (local_address(sock), local_address(sock, peer=True))
            except OSError as err:  # reset before we could look: as good as refused
                exc = err
            else:
                if self.own is not None:
                    self.own.add(self.ends)
                self.on_done(sock, None)
                return
        sock.close()
        self._failed(exc)

    def cancel(self) -> None:
        self.addrs.clear()
        sock, fut = self.sock, self.fut
        self.sock = self.fut = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if fut is not None:
            fut.cancel()
        if sock is not None:
            # As the proactor's transports do: close after the cancellation is processed.
            self.loop.call_soon(sock.close)
