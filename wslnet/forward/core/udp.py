"""UDP forwarding: a session per client address, each with its own upstream socket.

Replies travel back through the listening socket the client used; datagram boundaries
are kept (one datagram in, one out, up to 65,507 bytes). A session ends when idle for
`udp_timeout` seconds, or when the target answers ICMP "port unreachable". WSL's own
relay never forwards UDP (shared wsl-networking.md section 4).

This is the core's half (admission, resolving, counting, logging, the session's life);
the sockets are the data path's (data/udp_port.py, data/sockopts.py), as in mitmproxy,
whose UDP layer decides while its server owns the sockets.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wslnet.forward.core.admit import admit, evictee, log_refusal
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import ResolveError, Resolver
from wslnet.forward.core.rules import Rule, format_addr, format_hostport
from wslnet.forward.core.stats import Counters, end_level
from wslnet.forward.data.address import Address
from wslnet.forward.data.ends import IDLE_TIMEOUT, SHUTDOWN, End
from wslnet.forward.data.sockopts import big_buffers
from wslnet.forward.data.udp_port import (
    DatagramPort,
    OnDatagram,
    OnError,
    open_port,
    peer_gone,
)

_PENDING_LIMIT = 64  # datagrams held while a new session's target is being resolved
ICMP_UNREACHABLE = End("target-unreachable", "ICMP port unreachable")
EVICTED_RULE = End("evicted", "longest idle, the rule at --udp-max-sessions")
EVICTED_BUDGET = End("evicted", "longest idle, all rules at the descriptor budget")

# Opens a connected socket towards the target, as a started-later DatagramPort.
OpenTarget = Callable[[asyncio.AbstractEventLoop, Address, OnDatagram, OnError], DatagramPort]


def open_target(
    loop: asyncio.AbstractEventLoop, addr: Address, on_datagram: OnDatagram, on_error: OnError
) -> DatagramPort:
    family, sockaddr = addr
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        big_buffers(sock)  # no no_connreset: the target's port unreachable ends the session
        sock.setblocking(False)
        sock.connect(sockaddr)  # connected: ICMP errors come back as ECONNREFUSED
    except OSError:
        sock.close()
        raise
    return open_port(loop, sock, on_datagram, on_error, True)


@dataclass(eq=False)
class Session:
    owner: UdpRule
    client: Any  # the client's address, as recvfrom gave it
    reply_via: DatagramPort
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)  # traffic last seen, by the sweep
    seen: int = 0  # datagrams counted at that sweep (no clock read per datagram)
    target: str = ""
    port: DatagramPort | None = None  # the connected socket towards the target, once open
    pending: list[bytes] = field(default_factory=list)
    up: int = 0
    down: int = 0
    datagrams_up: int = 0
    datagrams_down: int = 0
    ended: bool = False

    def opened(self, port: DatagramPort) -> None:
        self.port = port
        for data in self.pending:
            port.send(data)
        self.pending.clear()
        port.start()

    def from_target(self, data: bytes, _addr: Any) -> None:
        self.down += len(data)
        self.datagrams_down += 1
        self.reply_via.send(data, self.client)

    def target_error(self, exc: OSError) -> None:
        # A connected UDP socket hears the target's ICMP port unreachable, in each
        # platform's words (peer_gone); other errors (a datagram too long) leave it open.
        if peer_gone(exc):
            self.owner.end(self, ICMP_UNREACHABLE)

    def send(self, data: bytes) -> None:
        self.up += len(data)
        self.datagrams_up += 1
        if self.port is not None:
            self.port.send(data)
        elif len(self.pending) < _PENDING_LIMIT:
            self.pending.append(data)


class SessionBudget:
    """UDP sessions of all rules together, against one limit taken from the descriptor
    limit (admit.udp_budget); the rules that share it, to take the longest idle from."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = sys.maxsize if limit is None else limit
        self.used = 0
        self.rules: list[UdpRule] = []


def _ignore(*_: object) -> None:
    pass  # e.g. an ICMP error about a reply sent to a client: nothing to do


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
        opener: OpenTarget = open_target,
        budget: SessionBudget | None = None,
    ) -> None:
        self.rule = rule
        self.id = rule_id
        self.socks = socks
        self.resolver = resolver
        self.log = log
        self.timeout = timeout
        self.max_sessions = max_sessions
        self.counters = counters
        self.opener = opener
        self.budget = SessionBudget() if budget is None else budget
        self.budget.rules.append(self)  # until close()
        self.loop = asyncio.get_running_loop()
        # By client address, as recvfrom gave it, in order of last activity as the sweep
        # saw it: the first is the longest idle (eviction costs no search).
        self.sessions: dict[Any, Session] = {}
        self.ports: list[DatagramPort] = []  # one per listening socket
        self.dropped_ended = 0  # datagrams dropped by the sessions that have ended
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        for sock in self.socks:
            port = open_port(self.loop, sock, _ignore, _ignore, connected=False)
            port.on_datagram = functools.partial(self.from_client, port)  # replies leave by it
            self.ports.append(port)
            port.start()
        self._sweeper = self.loop.create_task(self._sweep())

    def dropped(self) -> int:
        """Datagrams dropped because a socket's send queue was full, since the start."""
        live = sum(s.port.dropped for s in self.sessions.values() if s.port is not None)
        return self.dropped_ended + live + sum(p.dropped for p in self.ports)

    def live_bytes(self) -> tuple[int, int]:
        """(up, down) moved by the open sessions."""
        sessions = self.sessions.values()
        return sum(s.up for s in sessions), sum(s.down for s in sessions)

    def from_client(self, via: DatagramPort, data: bytes, addr: Any) -> None:
        session = self.sessions.get(addr)
        if session is None:
            session = self._new_session(via, addr)
            if session is None:
                return
        session.send(data)

    def _new_session(self, via: DatagramPort, addr: Any) -> Session | None:
        refusal = admit(self.rule, addr, 0, None)  # the caps evict instead: make_room
        if refusal is not None:
            self.counters.refused(refusal)
            log_refusal(self.log, self.id, "udp", addr, refusal)
            return None
        budget = self.budget
        if len(self.sessions) >= self.max_sessions or budget.used >= budget.limit:
            self.make_room()
        session = Session(self, addr, via)
        self.sessions[addr] = session
        budget.used += 1
        self.counters.accepted += 1
        addrs = self.resolver.cached(self.rule.target)
        if addrs is None:  # a name to look up first; datagrams wait in `pending`
            self.loop.create_task(self._resolve_then_open(session))
        else:
            self._open(session, addrs)
        return session

    def make_room(self) -> None:
        """Ends the longest-idle session: this rule's at its own cap, else the longest
        idle of all rules (the budget is full), so that a newcomer is never locked out."""
        rules = self.budget.rules
        own = len(self.sessions) >= self.max_sessions
        victim = evictee(
            [_first_last(r.sessions) for r in rules], rules.index(self) if own else None
        )
        if victim is not None:
            pool = rules[victim]
            pool.end(next(iter(pool.sessions.values())), EVICTED_RULE if own else EVICTED_BUDGET)

    async def _resolve_then_open(self, session: Session) -> None:
        try:
            addrs: list[Address] = await self.resolver.resolve(self.rule.target)
        except ResolveError as exc:
            self.end(session, End("connect-dns", str(exc)))
            return
        if not session.ended:
            self._open(session, addrs)

    def _open(self, session: Session, addrs: list[Address]) -> None:
        session.target = format_hostport(*addrs[0][1][:2])
        try:
            port = self.opener(self.loop, addrs[0], session.from_target, session.target_error)
        except OSError as exc:
            self.resolver.forget(self.rule.target)
            self.end(session, End("connect-error", str(exc.strerror or exc)))
            return
        session.opened(port)

    def end(self, session: Session, reason: End) -> None:
        if session.ended:
            return
        session.ended = True
        if self.sessions.pop(session.client, None) is not None:
            self.budget.used -= 1
        dropped = 0
        if session.port is not None:
            dropped = session.port.dropped
            self.dropped_ended += dropped
            session.port.close()
        self.counters.finished(reason, session.up, session.down)
        level = end_level(reason)
        if self.log.enabled(level):
            fields: dict[str, object] = dict(
                rule=self.id,
                client=format_addr(session.client),
                target=session.target or str(self.rule.target),
                up=session.up,
                down=session.down,
                datagrams_up=session.datagrams_up,
                datagrams_down=session.datagrams_down,
                dropped=dropped,
                duration=round(time.monotonic() - session.started, 6),
                reason=str(reason),
            )
            if reason.kind == "evicted":  # a flood evicts one per datagram: a line a second
                self.log.limited(f"udp-evicted:{self.id}", level, "udp-session", **fields)
            else:
                self.log(level, "udp-session", "", **fields)

    async def _sweep(self) -> None:
        step = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(step)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Ends the sessions that moved nothing for `timeout` seconds before `now`."""
        for session in list(self.sessions.values()):
            moved = session.datagrams_up + session.datagrams_down
            if moved != session.seen:
                session.seen, session.last = moved, now
                self.sessions[session.client] = self.sessions.pop(session.client)  # to the end
            elif now - session.last >= self.timeout:
                self.end(session, IDLE_TIMEOUT)

    def close(self) -> None:
        """Stops listening and ends every session: datagrams have no stream to drain."""
        for port in self.ports:
            port.close()
        if self in self.budget.rules:
            self.budget.rules.remove(self)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for session in list(self.sessions.values()):
            self.end(session, SHUTDOWN)


def _first_last(sessions: dict[Any, Session]) -> float | None:
    """When the longest-idle session (the first) last moved; None when there is none."""
    for session in sessions.values():
        return session.last
    return None
