"""Zero-copy relay for Linux: socket -> pipe -> socket with os.splice, driven by the loop.

Data never enters Python: each direction owns a pipe (made on first data, so idle
connections cost no pipe) and reads from its source only while the pipe is empty,
so back-pressure is the pipe's size.
"""

from __future__ import annotations

import sys

assert sys.platform == "linux"  # os.splice and F_SETPIPE_SZ are Linux-only

import asyncio
import fcntl
import os
import socket

from wslnet.forward.relay import Relay, set_reset_on_close, side_error

PIPE_SIZE = 1024 * 1024
_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
# Rounds per wake-up before yielding to other connections.
_ROUNDS = 16


class _Pump:
    __slots__ = (
        "dst",
        "dst_fd",
        "eof",
        "loop",
        "name",
        "pending",
        "pr",
        "pw",
        "relay",
        "size",
        "src",
        "src_fd",
        "total",
        "writing",
    )

    def __init__(
        self, relay: SpliceRelay, src: socket.socket, dst: socket.socket, name: str
    ) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.src, self.dst = src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.name = name  # the side that reads: "client" or "target"
        self.pr = self.pw = -1
        self.size = PIPE_SIZE
        self.pending = 0
        self.total = 0
        self.eof = False
        self.writing = False

    def _open_pipe(self) -> None:
        self.pr, self.pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.pw, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            self.size = fcntl.fcntl(self.pw, fcntl.F_GETPIPE_SZ)

    def on_readable(self) -> None:
        if self.pr < 0:
            try:
                self._open_pipe()
            except OSError as exc:
                self.relay.fail(f"error: no pipe: {exc.strerror}", reset=True)
                return
        splice = os.splice
        for _ in range(_ROUNDS):
            try:
                n = splice(self.src_fd, self.pw, self.size, flags=_FLAGS)
            except BlockingIOError:
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

    def _flush(self) -> bool:
        """Writes the pipe out; False (and waits for writable) if the destination is full."""
        while self.pending:
            try:
                m = os.splice(self.pr, self.dst_fd, self.pending, flags=_FLAGS)
            except BlockingIOError:
                m = 0
            except OSError as exc:
                peer = "target" if self.name == "client" else "client"
                self.relay.fail(side_error(peer, exc), reset=True)
                return False
            if m == 0:
                if not self.writing:
                    self.loop.remove_reader(self.src_fd)
                    self.loop.add_writer(self.dst_fd, self.on_writable)
                    self.writing = True
                return False
            self.pending -= m
            self.total += m
        return True

    def on_writable(self) -> None:
        if not self._flush():
            return
        self.loop.remove_writer(self.dst_fd)
        self.writing = False
        self.loop.add_reader(self.src_fd, self.on_readable)

    def _end_of_stream(self) -> None:
        # Half-close: pass the FIN on and keep the other direction running.
        self.loop.remove_reader(self.src_fd)
        self.eof = True
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.relay.direction_done()

    def stop(self) -> None:
        self.loop.remove_reader(self.src_fd)
        self.loop.remove_writer(self.dst_fd)
        for fd in (self.pr, self.pw):
            if fd >= 0:
                os.close(fd)
        self.pr = self.pw = -1


class SpliceRelay(Relay):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, client: socket.socket, target: socket.socket
    ) -> None:
        super().__init__(loop)
        self.client, self.target = client, target
        self.pumps = (_Pump(self, client, target, "client"), _Pump(self, target, client, "target"))
        self.closed = False

    @property
    def up(self) -> int:
        return self.pumps[0].total

    @property
    def down(self) -> int:
        return self.pumps[1].total

    def start(self) -> None:
        for pump in self.pumps:
            self.loop.add_reader(pump.src_fd, pump.on_readable)

    def direction_done(self) -> None:
        if all(p.eof for p in self.pumps):
            self._close(reset=False)
            self._finish("closed")

    def fail(self, reason: str, reset: bool) -> None:
        self._close(reset=reset)
        self._finish(reason)

    def abort(self, reason: str) -> None:
        self.fail(reason, reset=True)

    def close(self, reason: str) -> None:
        self.fail(reason, reset=False)

    def _close(self, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for pump in self.pumps:
            pump.stop()
        for sock in (self.client, self.target):
            if reset:
                set_reset_on_close(sock)
            sock.close()
