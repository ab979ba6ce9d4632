"""UDP sockets read in batches, as libuv does: one wake-up drains the datagrams waiting
(up to READ_BATCH) instead of one per turn of the loop, which is where asyncio's datagram
transports spend a busy UDP rule's time.

Two ways to wait, chosen for the loop by `open_port`:
- readiness (selector loops, uvloop): a reader callback drains the socket;
- completion (Windows' proactor cannot watch descriptors): one overlapped receive; when
  it completes, the socket is drained without blocking, then the next one is posted. One
  read at a time, so datagrams keep their order; an error never stops the reading.
Writes go straight to the socket. Only while its buffer is full are they queued, up to
SEND_QUEUE bytes; past that a datagram is dropped and counted, as a full network would.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from wslnet.forward.data.loops import Proactor, proactor_of

READ_BATCH = 64  # datagrams per wake-up before other work gets a turn
MAX_DATAGRAM = 65536
SEND_QUEUE = 1 << 20

OnDatagram = Callable[[bytes, Any], None]  # (data, sender address; None when connected)
OnError = Callable[[OSError], None]
ERROR_PORT_UNREACHABLE = 1234  # winerror of an overlapped receive after ICMP unreachable


def port_unreachable() -> ConnectionRefusedError:
    """The error the port reports for the proactor's (b'', None): what Linux says."""
    return ConnectionRefusedError(errno.ECONNREFUSED, "port unreachable")


def peer_gone(exc: OSError) -> bool:
    """Whether a connected socket's error says the peer's port is closed: ECONNREFUSED
    (Linux); WSAECONNRESET, raised by a receive posted after the ICMP came (Windows);
    ERROR_PORT_UNREACHABLE, an overlapped recv's failure (always) and recvfrom's before
    3.11.9/3.12.3 (Windows; Lib/asyncio/windows_events.py finish_socket_func)."""
    return isinstance(exc, (ConnectionRefusedError, ConnectionResetError)) or (
        getattr(exc, "winerror", None) == ERROR_PORT_UNREACHABLE
    )


class DatagramPort(abc.ABC):
    """One non-blocking UDP socket, owned: read in batches into `on_datagram`, written
    without ever blocking the loop, errors to `on_error`, closed once."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_datagram: OnDatagram,
        on_error: OnError,
        connected: bool,
    ) -> None:
        sock.setblocking(False)
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.on_datagram = on_datagram
        self.on_error = on_error
        self.connected = connected
        self.queue: deque[tuple[bytes, Any]] = deque()
        self.queued = 0  # bytes in the queue
        self.dropped = 0  # datagrams dropped because the queue was full
        self.closed = False

    @abc.abstractmethod
    def start(self) -> None:
        """Starts reading."""

    @abc.abstractmethod
    def _wait_writable(self) -> None:
        """Sends the queue once the socket takes it."""

    @abc.abstractmethod
    def _stop(self) -> None:
        """Stops waiting on the socket and closes it."""

    def drain(self) -> None:
        """Reads what is waiting, up to READ_BATCH datagrams, without blocking."""
        sock, deliver = self.sock, self.on_datagram
        for _ in range(READ_BATCH):
            if self.closed:
                return
            try:
                if self.connected:
                    data, addr = sock.recv(MAX_DATAGRAM), None
                else:
                    data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.on_error(exc)
                return
            deliver(data, addr)

    def send(self, data: bytes, addr: Any = None) -> None:
        """Sends one datagram (to `addr`, or to the connected peer); an empty one too."""
        if self.closed:
            return
        if not self.queue:
            try:  # _send_now, inlined: this is every datagram's path
                if addr is None:
                    self.sock.send(data)
                else:
                    self.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.on_error(exc)
                return
        if self.queued + len(data) > SEND_QUEUE:
            self.dropped += 1
            return
        self.queue.append((data, addr))
        self.queued += len(data)
        if len(self.queue) == 1:
            self._wait_writable()

    def _send_now(self, data: bytes, addr: Any) -> None:
        if addr is None:
            self.sock.send(data)
        else:
            self.sock.sendto(data, addr)

    def _sent(self) -> None:
        data, _ = self.queue.popleft()
        self.queued -= len(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.clear()
            self.queued = 0
            self._stop()


class ReadinessPort(DatagramPort):
    def start(self) -> None:
        self.loop.add_reader(self.fd, self.drain)

    def _wait_writable(self) -> None:
        self.loop.add_writer(self.fd, self._flush)

    def _flush(self) -> None:
        while self.queue:
            data, addr = self.queue[0]
            try:
                self._send_now(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.on_error(exc)
                if self.closed:
                    return
            self._sent()
        self.loop.remove_writer(self.fd)

    def _stop(self) -> None:
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.sock.close()


class CompletionPort(DatagramPort):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_datagram: OnDatagram,
        on_error: OnError,
        connected: bool,
        proactor: Proactor,
    ) -> None:
        super().__init__(loop, sock, on_datagram, on_error, connected)
        self.proactor = proactor
        self.reading: asyncio.Future[Any] | None = None
        self.writing: asyncio.Future[Any] | None = None

    def start(self) -> None:
        for _ in range(READ_BATCH):
            if self.closed:
                return
            try:
                if self.connected:
                    self.reading = self.proactor.recv(self.sock, MAX_DATAGRAM)
                else:
                    self.reading = self.proactor.recvfrom(self.sock, MAX_DATAGRAM)
            except OSError as exc:
                # WSARecvFrom can fail at once, with WSAECONNRESET for an earlier datagram's
                # ICMP error (cpython gh-127057): say so and post again, or the rule goes
                # deaf. Only a closed socket ends the reading.
                self.on_error(exc)
                if self.sock.fileno() < 0:
                    return
                continue
            self.reading.add_done_callback(self._received)
            return
        self.loop.call_soon(self.start)  # failing at every post: retry, but let others run

    def _received(self, fut: asyncio.Future[Any]) -> None:
        self.reading = None
        if self.closed or fut.cancelled():
            return
        try:
            result = fut.result()
        except OSError as exc:
            self.on_error(exc)
        else:
            if result.__class__ is not tuple:  # recv, on a connected socket
                self.on_datagram(result, None)
            elif result[1] is None:
                # (b'', None) is no datagram: IocpProactor._finish_recvfrom's answer to
                # ERROR_PORT_UNREACHABLE (gh-91227: 3.11.9+, 3.12.3+, 3.13+). recv never
                # gives it: it fails with winerror 1234 on every version (peer_gone).
                self.on_error(port_unreachable())
            else:
                self.on_datagram(*result)
            self.drain()
        self.start()

    def _wait_writable(self) -> None:
        while self.queue and not self.closed:
            data, addr = self.queue[0]
            try:
                if addr is None:
                    self.writing = self.proactor.send(self.sock, data)
                else:
                    self.writing = self.proactor.sendto(self.sock, data, 0, addr)
            except OSError as exc:
                self._sent()
                self.on_error(exc)
                continue
            self.writing.add_done_callback(self._written)
            return

    def _written(self, fut: asyncio.Future[Any]) -> None:
        self.writing = None
        if self.closed or fut.cancelled():
            return
        self._sent()
        try:
            fut.result()
        except OSError as exc:
            self.on_error(exc)
        self._wait_writable()

    def _stop(self) -> None:
        for fut in (self.reading, self.writing):
            if fut is not None:
                fut.cancel()
        # As the proactor's own transports do: the socket closes after the cancellations.
        self.loop.call_soon(self.sock.close)


def open_port(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    on_datagram: OnDatagram,
    on_error: OnError,
    connected: bool,
) -> DatagramPort:
    """The port for this loop: completion on Windows' proactor, readiness elsewhere."""
    proactor = proactor_of(loop)
    if proactor is not None:
        return CompletionPort(loop, sock, on_datagram, on_error, connected, proactor)
    return ReadinessPort(loop, sock, on_datagram, on_error, connected)
