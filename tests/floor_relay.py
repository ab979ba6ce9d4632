"""The stdlib event loop's own floor for a relay, for `make bench`.

The least a relay on asyncio's stdlib loop can do. TCP: accept, a non-blocking connect,
then recv/send between the two sockets from reader callbacks (partial writes held,
reading paused meanwhile; half-close passed on). UDP: a connected socket per client,
every waiting datagram read per wake-up. No transports, no protocols, no counters, no
logs, no limits, no timeouts. Whatever wslnet spends on the stdlib loop (the Windows
path) above this row is wslnet's; what this row spends above HAProxy or nginx is the
loop's and Python's.

Usage: floor_relay.py [udp/]LISTEN_PORT=TARGET_PORT ... (all on 127.0.0.1)
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

assert sys.platform != "win32", "the floor is measured on Linux, beside the Linux engines"

CHUNK = 256 * 1024


class Relay:
    def __init__(self, loop: asyncio.AbstractEventLoop, a: socket.socket, b: socket.socket):
        self.loop, self.socks, self.eofs = loop, (a, b), 0

    def start(self) -> None:
        a, b = self.socks
        self.loop.add_reader(a.fileno(), self.readable, a, b)
        self.loop.add_reader(b.fileno(), self.readable, b, a)

    def readable(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            data = src.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            return self.close()
        if not data:
            self.loop.remove_reader(src.fileno())
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.eofs += 1
            if self.eofs == 2:
                self.close()
            return
        self.write(src, dst, data)

    def write(self, src: socket.socket, dst: socket.socket, data: bytes) -> None:
        try:
            sent = dst.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return self.close()
        if sent < len(data):  # hold the rest; read no more from src until it is out
            self.loop.remove_reader(src.fileno())
            self.loop.add_writer(dst.fileno(), self.writable, src, dst, data[sent:])

    def writable(self, src: socket.socket, dst: socket.socket, held: bytes) -> None:
        self.loop.remove_writer(dst.fileno())
        self.loop.add_reader(src.fileno(), self.readable, src, dst)
        self.write(src, dst, held)

    def close(self) -> None:
        for s in self.socks:
            if s.fileno() >= 0:
                self.loop.remove_reader(s.fileno())
                self.loop.remove_writer(s.fileno())
                s.close()


class Side(asyncio.Protocol):
    """One socket of a relay on transports: what it reads, its peer writes."""

    def __init__(self) -> None:
        self.peer: Side
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []  # read before the peer's transport existed
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.peer.early:
            transport.writelines(self.peer.early)
        if self.peer.eof:
            transport.write_eof()

    def data_received(self, data: bytes) -> None:
        if self.peer.transport is None:
            self.early.append(data)
        else:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer.transport
        if self.peer.eof:  # both directions are over
            if peer is not None:
                peer.close()
            return False  # and this transport closes itself
        if peer is not None:
            peer.write_eof()
        return True

    def pause_writing(self) -> None:  # flow control: read no more than the peer takes
        if self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer.transport is not None and not self.peer.eof:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            peer.close()


def wrap(loop: asyncio.AbstractEventLoop, client: socket.socket, server: socket.socket) -> None:
    a, b = Side(), Side()
    a.peer, b.peer = b, a
    make = loop._make_socket_transport  # type: ignore[attr-defined]
    make(server, b)
    make(client, a)


def serve(
    loop: asyncio.AbstractEventLoop, port: int, target: int, transports: bool = False
) -> None:
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    lsock.setblocking(False)

    def connected(client: socket.socket, server: socket.socket) -> None:
        loop.remove_writer(server.fileno())
        if server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            client.close()
            server.close()
            return
        if transports:
            wrap(loop, client, server)
        else:
            Relay(loop, client, server).start()

    def acceptable() -> None:
        while True:
            try:
                client, _ = lsock.accept()
            except BlockingIOError:
                return
            client.setblocking(False)
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server.connect_ex(("127.0.0.1", target))
            loop.add_writer(server.fileno(), connected, client, server)

    loop.add_reader(lsock.fileno(), acceptable)


def serve_udp(loop: asyncio.AbstractEventLoop, port: int, target: int) -> None:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lsock.bind(("127.0.0.1", port))
    lsock.setblocking(False)
    sessions: dict[object, socket.socket] = {}

    def from_target(sock: socket.socket, client: Any) -> None:
        while True:
            try:
                lsock.sendto(sock.recv(65536), client)
            except OSError:  # BlockingIOError: all read
                return

    def from_client() -> None:
        while True:
            try:
                data, client = lsock.recvfrom(65536)
            except OSError:
                return
            sock = sessions.get(client)
            if sock is None:
                sock = sessions[client] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.connect(("127.0.0.1", target))
                loop.add_reader(sock.fileno(), from_target, sock, client)
            try:
                sock.send(data)
            except OSError:
                pass

    loop.add_reader(lsock.fileno(), from_client)


def main() -> None:
    loop = asyncio.new_event_loop()
    transports = "--transports" in sys.argv[1:]
    for pair in sys.argv[1:]:
        if pair == "--transports":
            continue
        port, target = pair.removeprefix("udp/").split("=")
        if pair.startswith("udp/"):
            serve_udp(loop, int(port), int(target))
        else:
            serve(loop, int(port), int(target), transports)
    loop.run_forever()


if __name__ == "__main__":
    main()
