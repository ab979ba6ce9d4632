"""Relay for Linux: plain copies for small exchanges, zero-copy os.splice for streams.

A direction starts by copying through one shared buffer (no pipe, few syscalls: what
short request/response connections want). When a read fills that buffer, the stream
is bulk: the direction takes a pipe and moves socket -> pipe -> socket with splice, so
the data never enters Python. Either way a direction reads only while nothing is
waiting to be written, so back-pressure holds: at most one buffer (64 KiB) or one pipe
(1 MiB, kernel memory) per direction.
"""

from __future__ import annotations

import sys

assert sys.platform == "linux"  # os.splice and F_SETPIPE_SZ are Linux-only

import asyncio
import fcntl
import os
import select
import socket
from collections.abc import Callable

from wslnet.forward.data.ends import End
from wslnet.forward.data.epoll import READ_EVENTS, WRITE_EVENTS
from wslnet.forward.data.relay import Poller, Relay, Side, set_reset_on_close, side_error

COPY_SIZE = 64 * 1024
PIPE_SIZE = 1024 * 1024
_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_HUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_ROUNDS = 16  # reads per wake-up before other connections get a turn
# One loop thread, one buffer: a copy is written out (or saved) before the next read.
_BUF = bytearray(COPY_SIZE)
_VIEW = memoryview(_BUF)


class _Pump:
    """One direction: reads `src`, writes `dst`."""

    __slots__ = (
        "blocked",
        "dst",
        "dst_fd",
        "eof",
        "held",
        "hup",
        "loop",
        "name",
        "peer",
        "pending",
        "pr",
        "pw",
        "relay",
        "size",
        "splicing",
        "src",
        "src_fd",
        "total",
    )

    def __init__(
        self, relay: SpliceRelay, src: socket.socket, dst: socket.socket, name: Side, peer: Side
    ) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.src, self.dst = src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.name, self.peer = name, peer  # which side reads here, which side is written
        self.splicing = False  # copying through the shared buffer until a read fills it
        self.pr = self.pw = -1  # the pipe, once splicing
        self.size = PIPE_SIZE
        self.pending = 0  # bytes in the pipe
        self.held = b""  # copied bytes the destination did not take yet
        self.total = 0
        self.eof = False
        self.blocked = False  # holding data the destination did not take yet
        self.hup = False  # the peer may have sent FIN: read until EOF or EAGAIN

    def readable(self) -> None:
        """Moves data until the source runs dry (edge-triggered: it must be drained)."""
        if self.blocked or self.eof or self.relay.closed:
            return
        if not self.splicing and not self._copy():
            return
        self._splice()

    def writable(self) -> None:
        if self.blocked and not self.relay.closed and self._flush():
            self.blocked = False
            self.readable()

    def _copy(self) -> bool:
        """Copies while reads are small; True when the stream turned bulk (use splice)."""
        src = self.src
        for _ in range(_ROUNDS):
            try:
                n = src.recv_into(_BUF)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                self.relay.fail(side_error(self.name, exc), reset=True)
                return False
            if n == 0:
                self._end_of_stream()
                return False
            m = self._send(_VIEW[:n])
            if m < 0:
                return False
            if m < n:
                self.held = bytes(_VIEW[m:n])
                self._wait_writable()
                return False
            if n < COPY_SIZE and not self.hup:
                # A short read emptied the queue; new data brings a new edge. Saves the
                # recv that would only say EAGAIN. (With FIN seen, read on to the EOF.)
                return False
            if n == COPY_SIZE:
                try:
                    self._open_pipe()
                except OSError:
                    continue  # no pipe to be had: keep copying
                return True
        self.loop.call_soon(self.readable)  # more may be waiting: no new edge will say so
        return False

    def _send(self, data: bytes | memoryview) -> int:
        """Bytes the destination took (0 when it is full); -1 once the relay has failed."""
        try:
            m = self.dst.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self.relay.fail(side_error(self.peer, exc), reset=True)
            return -1
        self.total += m
        return m

    def _open_pipe(self) -> None:
        self.pr, self.pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.splicing = True
        try:
            fcntl.fcntl(self.pw, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # over the per-user pipe quota: the default size still works
            self.size = fcntl.fcntl(self.pw, fcntl.F_GETPIPE_SZ)

    def _splice(self) -> None:
        splice = os.splice
        for _ in range(_ROUNDS):
            try:
                n = splice(self.src_fd, self.pw, self.size, flags=_FLAGS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.relay.fail(side_error(self.name, exc), reset=True)
                return
            if n == 0:
                self._end_of_stream()
                return
            self.pending = n
            if not self._flush():
                return
        self.loop.call_soon(self.readable)

    def _flush(self) -> bool:
        """Writes out what is held; False (and waits for writable) if the destination is full."""
        if self.held:
            m = self._send(self.held)
            if m < 0:
                return False
            self.held = self.held[m:]
            if self.held:
                self._wait_writable()
                return False
        while self.pending:
            try:
                m = os.splice(self.pr, self.dst_fd, self.pending, flags=_FLAGS)
            except (BlockingIOError, InterruptedError):
                m = 0
            except OSError as exc:
                self.relay.fail(side_error(self.peer, exc), reset=True)
                return False
            if m == 0:
                self._wait_writable()
                return False
            self.pending -= m
            self.total += m
        return True

    def _wait_writable(self) -> None:
        self.blocked = True  # the destination's next out-edge resumes us

    def _end_of_stream(self) -> None:
        # Half-close: pass the FIN on and keep the other direction running. When that
        # direction is over too, the close right after sends the FIN.
        self.eof = True
        if self.relay.ending.eof(self.name):
            self.relay.stop(reset=False)
            self.relay.ending.finish()
            return
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        if self.splicing:
            os.close(self.pr)
            os.close(self.pw)
            self.splicing = False
            self.pr = self.pw = -1


class SpliceRelay(Relay):
    __slots__ = ("client", "closed", "poller", "pumps", "target", "target_spoke")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        target: socket.socket,
        on_end: Callable[[End], None],
        poller: Poller,
        target_spoke: bool = False,
    ) -> None:
        super().__init__(loop, on_end)
        self.poller = poller
        self.target_spoke = target_spoke  # data (or FIN) arrived while it was being dialled
        self.client, self.target = client, target
        self.pumps = (
            _Pump(self, client, target, "client", "target"),
            _Pump(self, target, client, "target", "client"),
        )
        self.closed = False

    @property
    def up(self) -> int:
        return self.pumps[0].total

    @property
    def down(self) -> int:
        return self.pumps[1].total

    def start(self) -> None:
        # Most clients speak first: read what is there now, saving a loop turn. The
        # client joins the poller after: adding it reports what arrives meanwhile.
        self.pumps[0].readable()
        if self.closed:
            return
        self.poller.add(self.client.fileno(), self._on_client)
        # The target joined when it was dialled; an edge the dialer saw is ours to read.
        self.poller.set_handler(self.target.fileno(), self._on_target)
        if self.target_spoke:
            self.pumps[1].hup = True
            self.pumps[1].readable()

    def _on_client(self, events: int) -> None:
        self._on_event(events, self.client, "client", self.pumps[0], self.pumps[1])

    def _on_target(self, events: int) -> None:
        self._on_event(events, self.target, "target", self.pumps[1], self.pumps[0])

    def _on_event(
        self, events: int, sock: socket.socket, name: Side, reads: _Pump, writes: _Pump
    ) -> None:
        if events & select.EPOLLERR:
            # A reset is reported even on a half-closed socket nobody reads any more.
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(side_error(name, OSError(err, os.strerror(err))), reset=True)
                return
        if events & WRITE_EVENTS:
            writes.writable()
        if events & READ_EVENTS:
            if events & _HUP:
                reads.hup = True
            reads.readable()

    def fail(self, reason: End, reset: bool) -> None:
        self.ending.claim(reason)
        self.stop(reset=reset)
        self.ending.finish()

    def abort(self, reason: End) -> None:
        self.fail(reason, reset=True)

    def close(self, reason: End) -> None:
        self.fail(reason, reset=False)

    def stop(self, reset: bool) -> None:
        """Closes both sockets (and the pipes): with a reset, or in order."""
        if self.closed:
            return
        self.closed = True
        for pump in self.pumps:
            pump.stop()
        for sock in (self.client, self.target):
            self.poller.forget(sock.fileno())
            if reset:
                set_reset_on_close(sock)
            sock.close()
