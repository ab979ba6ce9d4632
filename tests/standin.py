"""Windows' proactor, stood in for on a selector loop (Linux, or Windows' own selector
loop): IocpProactor's calls as futures over real non-blocking sockets, one cancellable
future per accept, connect, receive or send, so the completion-driven data path
(core/accept.py's CompletionStrategy, data/dial.py's CompletionDialer,
data/udp_port.py's CompletionPort, data/relay_proto.py on the loop's transports) runs its
logic here. It copies what Windows and CPython do that a kinder stand-in would hide, each
quirk with the source it copies (CPython 3.10-3.14 unless said):

- ConnectEx parses any 2-tuple as IPv4 (Modules/overlapped.c parse_address): an IPv6
  host in one fails at once with WSAEINVAL.
- A receive posted after an ICMP port unreachable already came fails at once, raising
  WSAECONNRESET out of WSARecv/WSARecvFrom (Modules/overlapped.c: `default:
  Overlapped_clear(self); return SetFromWindowsErr(err)`; cpython gh-127057). One pending
  when it comes fails with OSError winerror 1234 (ERROR_PORT_UNREACHABLE, errno EINVAL by
  PC/errmap.h's default) for recv always (IocpProactor.recv registers finish_socket_func,
  which converts only NETNAME_DELETED and OPERATION_ABORTED); for recvfrom it completes
  as (b'', None) from 3.11.9, 3.12.3 and 3.13 on (IocpProactor._finish_recvfrom,
  gh-91227) and fails with 1234 before. `recvfrom_no_peer` chooses which, by default as
  the running Python would. Linux tells an unconnected UDP socket of ICMP errors only
  with IP_RECVERR, which is set here.
- Each accept is awaited by a task of its own that re-raises a failure nobody retrieves
  (IocpProactor.accept's accept_coro). Its failure can come before the task's first step
  (`accept_fails_early`: _register fails a future that is not pending at once, and _poll
  sets one in the same turn that runs the step), so the task is done, and out of
  asyncio.all_tasks, before anyone hears of the failure.
- Transports shut a socket down before closing it (Lib/asyncio/proactor_events.py
  _ProactorBasePipeTransport._call_connection_lost), unless it is closed already; a
  shutdown that fails (a socket the peer reset) raises out of the callback.
- The loop cannot watch descriptors: add_reader/add_writer raise NotImplementedError
  (Lib/asyncio/events.py AbstractEventLoop; neither BaseEventLoop nor
  BaseProactorEventLoop overrides them).

The IOCP binding itself runs on the Windows CI job. Python 3.10 has no
loop.sock_recvfrom/sock_sendto: datagrams are read and sent here without them."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import weakref
from asyncio import selector_events
from collections.abc import Callable, Coroutine
from typing import Any

WSAECONNRESET = 10054
ERROR_PORT_UNREACHABLE = 1234


def recvfrom_gives_no_peer(version: tuple[int, int, int]) -> bool:
    """Whether IocpProactor.recvfrom completes a port unreachable as (b'', None)
    (gh-91227: 3.11.9, 3.12.3, 3.13) rather than raising WinError 1234."""
    return version >= (3, 13) or (3, 12, 3) <= version < (3, 13) or (3, 11, 9) <= version < (3, 12)


ERROR_NETNAME_DELETED = 64  # AcceptEx's error for a client that reset before its accept


def win_error(code: int, winerror: int) -> OSError:
    """An OSError as Windows raises it: `winerror` set (an attribute only Windows' OSError
    fills in, so it is set by hand here)."""
    exc = OSError(code, f"WinError {winerror}")
    setattr(exc, "winerror", winerror)  # noqa: B010 - not declared off Windows
    return exc


_IP_RECVERR, _IPV6_RECVERR, _MSG_ERRQUEUE = 11, 25, 0x2000  # linux/in.h, in6.h, socket.h


class LoopProactor:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        assert isinstance(loop, selector_events.BaseSelectorEventLoop), "a selector loop"
        self.loop: selector_events.BaseSelectorEventLoop = loop
        self.fail_next: list[OSError] = []  # errors the next receives complete with
        self.accept_errors: list[OSError] = []  # errors the next accepts complete with
        self.hang_connects = False  # connects that never complete (a silent target)
        self.receives = 0
        self.accepts = 0
        self.accept_tasks: weakref.WeakSet[asyncio.Future[None]] = weakref.WeakSet()
        self.recvfrom_no_peer = recvfrom_gives_no_peer(sys.version_info[:3])
        self.accept_fails_early = False

    # -- waiting on a socket, as an overlapped operation does -------------------------
    def _overlapped(
        self, sock: socket.socket, attempt: Callable[[], Any], write: bool = False
    ) -> asyncio.Future[Any]:
        """A future for `attempt` (a non-blocking call): done at once if it can be,
        else when the socket is ready; cancelling it stops the wait."""
        fut: asyncio.Future[Any] = self.loop.create_future()
        fd = sock.fileno()
        base = selector_events.BaseSelectorEventLoop  # the loop's own, never overridden
        add, remove = base.add_reader, base.remove_reader
        if write:
            add, remove = base.add_writer, base.remove_writer

        def ready() -> None:
            if fut.done():
                remove(self.loop, fd)
                return
            try:
                result = attempt()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)
            remove(self.loop, fd)

        def stop(done: asyncio.Future[Any]) -> None:
            if done.cancelled():  # the socket may be closed by now: the fd is what counts
                remove(self.loop, fd)

        add(self.loop, fd, ready)
        fut.add_done_callback(stop)
        return fut

    def _receive(
        self, sock: socket.socket, read: Callable[[], Any], no_peer: Any
    ) -> asyncio.Future[Any]:
        self.receives += 1
        if self.fail_next:
            fut = self.loop.create_future()
            fut.set_exception(self.fail_next.pop(0))
            return fut
        if sock.type == socket.SOCK_DGRAM:
            report_icmp(sock)
            try:  # an ICMP error already here: WSARecv(From) raises it (gh-127057)
                return self._done(read())
            except (BlockingIOError, InterruptedError):
                pass
            except ConnectionRefusedError:
                _forget_icmp(sock)
                raise ConnectionResetError(errno.ECONNRESET, "reset", None, WSAECONNRESET) from None

            def completed() -> Any:
                try:
                    return read()
                except ConnectionRefusedError:  # came while pending
                    _forget_icmp(sock)
                    if no_peer is None:
                        raise win_error(errno.EINVAL, ERROR_PORT_UNREACHABLE) from None
                    return no_peer

            return self._overlapped(sock, completed)
        return self._overlapped(sock, read)

    def _done(self, value: Any) -> asyncio.Future[Any]:
        fut = self.loop.create_future()
        fut.set_result(value)
        return fut

    # -- IocpProactor's calls ----------------------------------------------------------
    def accept(self, listener: socket.socket) -> asyncio.Future[Any]:
        self.accepts += 1
        future: asyncio.Future[Any]
        if self.accept_errors:
            future = self.loop.create_future()
            # Completes after accept_coro's first step, as a completion port's would.
            error = self.accept_errors.pop(0)
            if self.accept_fails_early:
                future.set_exception(error)
            else:  # after accept_coro's first step, as a completion port's later would
                self.loop.call_soon(self.loop.call_soon, future.set_exception, error)
        else:

            def take() -> tuple[socket.socket, Any]:
                conn, addr = listener.accept()
                conn.setblocking(False)
                return conn, addr

            future = self._overlapped(listener, take)

        async def accept_coro(future: asyncio.Future[Any]) -> None:
            await future  # windows_events.py: a failure here is never retrieved

        self.accept_tasks.add(asyncio.ensure_future(accept_coro(future), loop=self.loop))
        return future

    def connect(self, conn: socket.socket, address: Any) -> asyncio.Future[Any]:
        if len(address) == 2:  # overlapped.c parse_address: a 2-tuple is AF_INET
            try:
                socket.inet_pton(socket.AF_INET, address[0])
            except OSError:
                raise OSError(errno.EINVAL, "ConnectEx: not an IPv4 address (WSAEINVAL)") from None
        if self.hang_connects:
            return self.loop.create_future()
        return asyncio.ensure_future(self.loop.sock_connect(conn, address), loop=self.loop)

    def recv(self, conn: socket.socket, nbytes: int) -> asyncio.Future[Any]:
        return self._receive(conn, lambda: conn.recv(nbytes), None)

    def recvfrom(self, conn: socket.socket, nbytes: int) -> asyncio.Future[Any]:
        no_peer = (b"", None) if self.recvfrom_no_peer else None
        return self._receive(conn, lambda: conn.recvfrom(nbytes), no_peer)

    def send(self, conn: socket.socket, buf: bytes) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.loop.sock_sendall(conn, buf), loop=self.loop)

    def sendto(
        self, conn: socket.socket, buf: bytes, flags: int = 0, addr: Any = None
    ) -> asyncio.Future[Any]:
        return self._overlapped(conn, lambda: conn.sendto(buf, flags, addr), write=True)


def report_icmp(sock: socket.socket) -> None:
    """Linux, like Windows, reports ICMP errors on unconnected UDP sockets too."""
    if sys.platform == "linux":
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)


def _forget_icmp(sock: socket.socket) -> None:
    """Empties IP_RECVERR's queue (its entries use the receive buffer)."""
    if sys.platform == "linux":
        while True:
            try:
                sock.recvmsg(1, 1024, _MSG_ERRQUEUE)
            except OSError:
                return


class _ClosesAsTheProactor:
    """The socket as the transport's `_call_connection_lost` sees it: its close() is
    the proactor's, proactor_events.py _ProactorBasePipeTransport._call_connection_lost:
    shutdown(SHUT_RDWR) unless the socket is closed already (fileno -1), then close; a
    shutdown that fails (the peer reset it: ENOTCONN here, WinError 10054 there) raises
    out of the callback."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


_SelectorSocketTransport: Any = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]


class _ProactorLikeTransport(_SelectorSocketTransport):  # type: ignore[misc]
    _sock: Any

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        sock = self._sock
        self._sock = _ClosesAsTheProactor(sock)  # the protocol is told first
        try:
            super()._call_connection_lost(exc)
        except OSError:
            self._sock = sock  # left open, as there; __del__ closes it (without shutdown)
            raise


class StandInProactorLoop(asyncio.SelectorEventLoop):
    """A loop the forwarder takes for Windows' proactor (it has a `_proactor`)."""

    def __init__(self) -> None:
        super().__init__()
        self._proactor = LoopProactor(self)

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError  # base_events.BaseEventLoop.add_reader, as the proactor

    def add_writer(self, fd: Any, callback: Any, *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError

    def _make_socket_transport(
        self, sock: Any, protocol: Any, waiter: Any = None, *, extra: Any = None, server: Any = None
    ) -> Any:
        return _ProactorLikeTransport(self, sock, protocol, waiter, extra, server)


def run_on_standin(main: Coroutine[Any, Any, Any], recvfrom_no_peer: bool | None = None) -> Any:
    """Runs `main` on the stand-in; `recvfrom_no_peer` picks a Python's recvfrom (3.11.9+
    or older) instead of the running one's."""
    loop = StandInProactorLoop()
    if recvfrom_no_peer is not None:
        loop._proactor.recvfrom_no_peer = recvfrom_no_peer
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
