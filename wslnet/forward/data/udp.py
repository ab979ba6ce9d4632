"""UDP forwarding: a session per client address, each with its own upstream socket.

Replies travel back through the listening socket the client used; datagram boundaries
are kept (one datagram in, one out, up to 65,507 bytes). A session ends when idle for
`udp_timeout` seconds, or when the target answers ICMP "port unreachable". WSL's own
relay never forwards UDP (shared wsl-networking.md section 4).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import cast

from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import Address, ResolveError, Resolver
from wslnet.forward.core.rules import Rule, admits, format_addr, format_hostport
from wslnet.forward.core.stats import Counters, end_level

UDP_BUFFER = 4 << 20


def no_connreset(sock: socket.socket) -> None:
    """Windows reports an ICMP port unreachable of an earlier datagram as WinError 10054
    on the next receive (SIO_UDP_CONNRESET), and some Pythons' proactor stops reading the
    socket after it: one dead client would stall the whole rule. Turn it off."""
    code = getattr(socket, "SIO_UDP_CONNRESET", None)
    if code is not None and hasattr(sock, "ioctl"):
        try:
            sock.ioctl(code, False)
        except (OSError, ValueError):
            pass


def big_buffers(sock: socket.socket) -> None:
    """A burst of datagrams from many clients must not overflow the default ~200 KiB
    buffer while the loop is busy: ask for more (root may exceed rmem_max)."""
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # SO_*BUFFORCE
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, force if sys.platform == "linux" else opt, UDP_BUFFER
            )
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, UDP_BUFFER)
            except OSError:
                pass


_PENDING_LIMIT = 64  # datagrams held while a new session's socket is being set up


def _send(
    transport: asyncio.DatagramTransport,
    sock: socket.socket,
    data: bytes,
    addr: tuple[str, int] | None = None,
) -> None:
    if data:
        transport.sendto(data, addr)
        return
    # asyncio (3.11) drops an empty sendto; an empty datagram is still a datagram.
    try:
        if addr is None:
            sock.send(b"")
        else:
            sock.sendto(b"", addr)
    except OSError:
        pass


class _Listen(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpRule, sock: socket.socket) -> None:
        self.owner = owner
        self.sock = sock
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner.from_client(self, data, addr)

    def reply(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        _send(self.transport, self.sock, data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error about a reply we sent to a client: nothing to do


@dataclass(eq=False)
class Session(asyncio.DatagramProtocol):
    owner: UdpRule
    client: tuple[str, int]
    reply_via: _Listen
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    target: str = ""
    transport: asyncio.DatagramTransport | None = None
    sock: socket.socket | None = None
    pending: list[bytes] = field(default_factory=list)
    up: int = 0
    down: int = 0
    datagrams_up: int = 0
    datagrams_down: int = 0
    ended: bool = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's but have their methods.
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.pending:
            self._upstream(data)
        self.pending.clear()

    def _upstream(self, data: bytes) -> None:
        assert self.transport is not None and self.sock is not None
        _send(self.transport, self.sock, data)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = time.monotonic()
        self.down += len(data)
        self.datagrams_down += 1
        self.reply_via.reply(data, self.client)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.owner.end(self, "target-unreachable (ICMP port unreachable)")

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        self.up += len(data)
        self.datagrams_up += 1
        if self.transport is not None:
            self._upstream(data)
        elif len(self.pending) < _PENDING_LIMIT:
            self.pending.append(data)


class UdpRule:
    """The UDP side of one rule: its listening sockets and its sessions."""

    def __init__(
        self,
        rule: Rule,
        rule_id: int,
        socks: list[socket.socket],
        resolver: Resolver,
        log: EventLog,
        timeout: float,
        max_sessions: int,
        counters: Counters,
    ) -> None:
        self.rule = rule
        self.id = rule_id
        self.socks = socks
        self.resolver = resolver
        self.log = log
        self.timeout = timeout
        self.max_sessions = max_sessions
        self.counters = counters
        self.loop = asyncio.get_running_loop()
        self.sessions: dict[tuple[str, int], Session] = {}
        self.transports: list[asyncio.DatagramTransport] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for sock in self.socks:
            transport, _ = await self.loop.create_datagram_endpoint(
                functools.partial(_Listen, self, sock), sock=sock
            )
            self.transports.append(transport)
        self._sweeper = self.loop.create_task(self._sweep())

    def live_bytes(self) -> tuple[int, int]:
        """(up, down) moved by the open sessions."""
        sessions = self.sessions.values()
        return sum(s.up for s in sessions), sum(s.down for s in sessions)

    def from_client(self, via: _Listen, data: bytes, addr: tuple[str, int]) -> None:
        key = (str(addr[0]), int(addr[1]))
        session = self.sessions.get(key)
        if session is None:
            counters = self.counters
            if self.rule.allow is not None and not admits(self.rule.allow, addr):
                counters.denied += 1
                counters.ended["not-allowed"] += 1
                client = format_addr(key)
                self.log.limited(
                    f"udp-denied:{self.id}", "warning", "denied", rule=self.id, client=client,
                    reason="not-allowed",
                )  # fmt: skip
                return
            if len(self.sessions) >= self.max_sessions:
                counters.rejected += 1
                counters.ended["max-sessions"] += 1
                self.log.limited(
                    f"udp-refused:{self.id}", "warning", "udp-refused", rule=self.id,
                    client=format_addr(key), reason="max-sessions", limit=self.max_sessions,
                )  # fmt: skip
                return
            session = Session(self, key, via)
            self.sessions[key] = session
            counters.accepted += 1
            self.loop.create_task(self._open(session))
        session.send(data)

    async def _open(self, session: Session) -> None:
        try:
            addrs: list[Address] = await self.resolver.resolve(self.rule.target)
        except ResolveError as exc:
            self.end(session, f"connect-dns: {exc}")
            return
        family, sockaddr = addrs[0]
        session.target = format_hostport(*sockaddr)
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            big_buffers(sock)
            no_connreset(sock)
            sock.setblocking(False)
            sock.connect(sockaddr)  # connected: ICMP errors come back as ECONNREFUSED
            session.sock = sock
            await self.loop.create_datagram_endpoint(lambda: session, sock=sock)
        except OSError as exc:
            self.resolver.forget(self.rule.target)
            self.end(session, f"connect-error: {exc.strerror or exc}")
            return
        if session.ended and session.transport is not None:
            session.transport.close()

    def end(self, session: Session, reason: str) -> None:
        if session.ended:
            return
        session.ended = True
        self.sessions.pop(session.client, None)
        if session.transport is not None:
            session.transport.close()
        self.counters.finished(reason, session.up, session.down)
        level = end_level(reason)
        if self.log.enabled(level):
            self.log(
                level,
                "udp-session",
                rule=self.id,
                client=format_addr(session.client),
                target=session.target or str(self.rule.target),
                up=session.up,
                down=session.down,
                datagrams_up=session.datagrams_up,
                datagrams_down=session.datagrams_down,
                duration=round(time.monotonic() - session.started, 6),
                reason=reason,
            )

    async def _sweep(self) -> None:
        step = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if now - session.last >= self.timeout:
                    self.end(session, "idle-timeout")

    def close(self) -> None:
        """Stops listening and ends every session: datagrams have no stream to drain."""
        for transport in self.transports:
            transport.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for session in list(self.sessions.values()):
            self.end(session, "shutdown")
