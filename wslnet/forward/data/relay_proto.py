"""Portable relay on asyncio Protocols with flow control (Windows, or --engine protocol).

Each side pauses reading on the other while its write buffer is above HIGH_WATER, so
one connection holds at most HIGH_WATER plus one read chunk per direction.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import cast

from wslnet.forward.data.ends import End
from wslnet.forward.data.loops import proactor_of, transport_maker
from wslnet.forward.data.relay import (
    CLOSED_BY_LOOP,
    HIGH_WATER,
    LOW_WATER,
    Relay,
    Side,
    set_reset_on_close,
    side_error,
)


class _Side(asyncio.Protocol):
    __slots__ = (
        "early",
        "eof",
        "handed",
        "lost",
        "name",
        "peer",
        "received",
        "relay",
        "transport",
    )

    def __init__(self, relay: ProtocolRelay, name: Side) -> None:
        self.relay = relay
        self.name = name
        self.peer: _Side
        self.transport: asyncio.Transport | None = None
        self.received = 0  # bytes read here and handed to the peer
        self.eof = False
        self.lost = False
        self.early: list[bytes] = []  # read before the peer's transport existed
        self.handed = False  # uvloop has the socket, and no transport is made yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but have its methods.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        if self.peer.early:
            transport.writelines(self.peer.early)
            self.peer.early.clear()
        if self.peer.eof and transport.can_write_eof():
            transport.write_eof()
        self.relay.side_ready()

    def data_received(self, data: bytes) -> None:
        peer = self.peer.transport
        if peer is None:
            # Only possible before both sides are wrapped (a server that speaks first).
            self.early.append(data)
        elif peer.is_closing():
            return  # the peer's end came first (a reset): nothing more reaches it
        else:
            peer.write(data)  # (uvloop raises on a closed transport; asyncio drops it)
        self.received += len(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.relay.ending.eof(self.name):
            self.relay.close_both()
            return True
        peer = self.peer.transport
        if peer is not None and not peer.is_closing() and peer.can_write_eof():
            peer.write_eof()
        return True  # keep our write side open: half-close

    def pause_writing(self) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing() and not self.peer.eof:
            peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.relay.side_lost(self, exc)


class ProtocolRelay(Relay):
    __slots__ = (
        "_wrap",
        "client",
        "client_sock",
        "closes_itself",
        "resetting",
        "target",
        "target_sock",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        target: socket.socket,
        on_end: Callable[[End], None],
        target_spoke: bool = False,  # the protocol engine reads it on its own
    ) -> None:
        super().__init__(loop, on_end)
        self.client_sock, self.target_sock = client, target
        self.client = _Side(self, "client")
        self.target = _Side(self, "target")
        self.client.peer, self.target.peer = self.target, self.client
        # The proactor's transports shut a socket down before closing it, after
        # connection_lost, unless it is closed already (Lib/asyncio/proactor_events.py
        # _ProactorBasePipeTransport._call_connection_lost, 3.10-3.14): an aborted
        # socket's peer would read a clean end of file before the reset, and a shutdown
        # that fails (the peer reset it: WinError 10054) raises out of the callback. So
        # there the relay closes each socket itself, in connection_lost (side_lost).
        self.closes_itself = proactor_of(loop) is not None
        self.resetting = False  # aborted: sockets close with a reset, no shutdown

    @property
    def up(self) -> int:
        return self.client.received

    @property
    def down(self) -> int:
        return self.target.received

    def start(self) -> None:
        # Wrapped at once where the loop can (two loop turns fewer than the coroutines).
        make = transport_maker(self.loop)
        if make is None:
            self._wrap = self.loop.create_task(self._wrap_sockets())
            return
        try:
            make(self.target_sock, self.target)
            make(self.client_sock, self.client)
        except OSError as exc:
            self.abort(End("error", str(exc)))

    async def _wrap_sockets(self) -> None:
        """uvloop, which has no transport factory: its public coroutines, target first.
        Each gives the descriptor to libuv at once, and from then on only the transport
        may close it: the socket object holds an I/O reference (a close() would close
        nothing, and the peer would wait) or, for create_connection(sock=), is attached
        only once connection_made has run and the coroutine resumes (uvloop/loop.pyx), so
        a target that resets at once leaves it on a descriptor libuv has closed, which
        would be closed again later, by then another connection's. So a side is `handed`
        until its transport exists (abort leaves it to side_ready), and the target's
        object lets go of the descriptor once the coroutine returns."""
        target, client = self.target, self.client
        target.handed = True
        try:
            await self.loop.create_connection(lambda: target, sock=self.target_sock)
        except OSError as exc:  # uvloop closed the descriptor and let go of it
            target.handed = False
            self.abort(side_error("target", exc))
            return
        target.handed = False
        self.target_sock.detach()  # the transport's now (closed already, or to close)
        if self.ending.reason is not None:  # ended meanwhile: the client stays ours
            self.abort(self.ending.reason)
            return
        client.handed = True
        try:
            await self.loop.connect_accepted_socket(lambda: client, sock=self.client_sock)
        except OSError as exc:
            client.handed = False
            self.abort(side_error("client", exc))
            return
        client.handed = False

    def side_ready(self) -> None:
        if self.ending.reason is not None and not self.ending.both_eof:
            self.abort(self.ending.reason)  # aborted while the sockets were being wrapped

    def close_both(self) -> None:
        for side in (self.client, self.target):
            if side.transport is not None and not side.lost:
                side.transport.close()  # flushes what is buffered, then closes

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if self.closes_itself:
            sock = self._sock(side)
            if exc is None and not self.resetting:
                with contextlib.suppress(OSError):  # as asyncio would, minus the raise
                    sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self.ending.reason is None:
            if exc is not None:
                self.abort(side_error(side.name, exc))
                return
            if not side.peer.lost:
                # Closed without passing through EOF (e.g. aborted by the loop): end both.
                self.abort(CLOSED_BY_LOOP[side.name])
                return
        if side.peer.lost:
            self.ending.finish()

    def _sock(self, side: _Side) -> socket.socket:
        return self.client_sock if side is self.client else self.target_sock

    def close(self, reason: End) -> None:
        if self.client.transport is None or self.target.transport is None:
            self.abort(reason)
            return
        self.ending.claim(reason)
        self.close_both()

    def abort(self, reason: End) -> None:
        self.ending.claim(reason)
        for side, sock in ((self.client, self.client_sock), (self.target, self.target_sock)):
            if side.lost:
                continue
            if side.transport is None:  # never wrapped: the socket is still ours
                if side.handed:
                    continue  # libuv has it: its connection_made aborts it (side_ready)
                side.lost = True
                if sock.fileno() >= 0:
                    set_reset_on_close(sock)
                    sock.close()
                continue
            if not side.transport.is_closing():  # a closed uvloop transport raises here
                raw = side.transport.get_extra_info("socket")  # uvloop's, where it has one
                set_reset_on_close(sock if raw is None else raw)
            self.resetting = True
            side.transport.abort()  # connection_lost follows, then the end
        if self.client.lost and self.target.lost:
            self.ending.finish()
