"""The rule table: which rules run, where each came from, who may connect to it."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from wslnet.errors import ListenError, UsageError
from wslnet.forward.core.listen import (
    HeldByRule,
    Holder,
    bind_rule,
    overlaps,
    program_holding,
)
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.rules import Endpoint, Proto, Rule, format_addr
from wslnet.forward.core.stats import Counters
from wslnet.forward.data.ends import IDLE_TIMEOUT

if TYPE_CHECKING:
    from wslnet.forward.core.conn import Connection
    from wslnet.forward.core.udp import UdpRule

Origin = Literal["cli", "config", "api", "auto"]  # a reload replaces only "config" rules


@dataclass(eq=False)
class ListeningSocket:
    """One socket a rule listens on (TCP accepts there; UDP reads there)."""

    rule: RuleState
    sock: socket.socket
    bound: str  # HOST:PORT as bound (the real port when 0 was asked for)
    accepting: asyncio.Future[Any] | None = None  # the overlapped accept, on the proactor


@dataclass(frozen=True)
class DialOutcome:
    """How the last dial to a rule's target went, and when (for the dashboard)."""

    ok: bool
    at: float  # time.time()
    reason: str = ""  # why it failed


@dataclass(eq=False)
class RuleState:
    """One rule while it runs: its sockets, open connections and counters."""

    id: int
    rule: Rule
    origin: Origin
    listeners: list[ListeningSocket] = field(default_factory=list)
    active: set[Connection] = field(default_factory=set)
    counters: Counters = field(default_factory=Counters)
    closing: bool = False  # removed: no longer listening, connections draining
    udp: UdpRule | None = None
    # TCP, set where each dial ends: a failure as a DialOutcome (with the time.monotonic()
    # it happened at); a success as the monotonic start of its connection only, since
    # every connection's dial goes through here (no allocation, no clock read).
    dial_failed: tuple[float, DialOutcome] | None = None
    dial_ok_since: float | None = None

    @property
    def last_dial(self) -> DialOutcome | None:
        """How the last dial to the target went, and when (for the dashboard)."""
        ok, failed = self.dial_ok_since, self.dial_failed
        if ok is not None and (failed is None or ok >= failed[0]):
            return DialOutcome(True, time.time() - (time.monotonic() - ok))
        return failed[1] if failed is not None else None

    def live(self) -> tuple[int, int, int]:
        """(open connections or sessions, bytes up, bytes down), open ones included."""
        up, down = self.counters.up, self.counters.down
        if self.udp is not None:
            sup, sdown = self.udp.live_bytes()
            return len(self.udp.sessions), up + sup, down + sdown
        for conn in self.active:
            if conn.relay is not None:
                up += conn.relay.up
                down += conn.relay.down
        return len(self.active), up, down


class Ports(Protocol):
    """What the table needs from the server: start serving a bound rule, stop it."""

    async def start(self, rs: RuleState) -> None: ...
    def stop(self, rs: RuleState) -> None: ...


def _unchanged() -> None:
    pass


class RuleTable:
    def __init__(self, log: EventLog, allow_any: bool, ports: Ports) -> None:
        self.log = log
        self.allow_any = allow_any
        self.ports = ports
        self.rules: list[RuleState] = []
        self._ids = itertools.count(1)
        # Told after a rule starts or stops listening (the control plane keeps this
        # forwarder's registration current with it; the table knows nothing of it).
        self.on_change: Callable[[], None] = _unchanged

    @property
    def active(self) -> int:
        return sum(len(rs.active) for rs in self.rules)

    def find(self, rule_id: int) -> RuleState | None:
        return next((rs for rs in self.rules if rs.id == rule_id and not rs.closing), None)

    def admit(self, rule: Rule) -> None:
        """The policy: a rule listening beyond loopback must say who may connect."""
        if rule.allow is not None or rule.listen.loopback:
            return
        if not self.allow_any:
            raise UsageError(
                f"rule {rule.text!r} listens on {rule.listen.host}, beyond this machine: say "
                "who may connect with --allow CIDR (or allow = [...] in the config file), "
                "or --allow-any"
            )

    async def add(self, rule: Rule, origin: Origin = "cli") -> RuleState:
        """Starts one more rule (at start, on reload, from the API or auto-forward)."""
        self.admit(rule)
        if rule.allow is None and not rule.listen.loopback:
            msg = "anyone who can reach this address may connect"
            self.log("warning", "allow-any", rule=rule.text, msg=msg)

        def no_ipv6() -> None:
            self.log("warning", "no-ipv6", rule=rule.text, msg="::1 unavailable: IPv4 only")

        rs = RuleState(next(self._ids), rule, origin)
        for sock in bind_rule(rule, no_ipv6, self.who_holds):
            rs.listeners.append(ListeningSocket(rs, sock, format_addr(sock.getsockname())))
        self.rules.append(rs)
        try:
            loop = self.loop_through(rs)
            if loop:
                path = " -> ".join(loop)
                raise UsageError(f"rule {rule.text!r} forwards to itself ({path}): pick a target")
            await self.ports.start(rs)
        except BaseException:
            self.rules.remove(rs)
            self.ports.stop(rs)
            raise
        self.on_change()
        return rs

    def who_holds(self, proto: Proto, endpoint: Endpoint) -> Holder:
        """Who listens on an address a new rule found in use: one of our own rules (the
        user gave two rules one port), else the program this machine's table names."""
        for rs in self.rules:
            if rs.rule.proto == proto and not rs.closing and _listens_on(rs, endpoint):
                return HeldByRule(rs.id, rs.rule.text)
        return program_holding(proto, endpoint)

    async def apply(self, rules: list[Rule], origin: Origin) -> None:
        """Makes the rules of `origin` these: removed ones stop listening (their connections
        drain), new ones start, changed ones restart. A rule that cannot start is logged."""
        current = {rs.rule: rs for rs in self.rules if rs.origin == origin and not rs.closing}
        for rule, rs in current.items():
            if rule not in rules:
                self.remove(rs)
        for rule in rules:
            if rule in current:
                continue
            try:
                await self.add(rule, origin)
            except (ListenError, UsageError) as exc:
                self.log("error", "rule-failed", rule=rule.text, msg=exc.message)
            except OSError as exc:  # e.g. the UDP endpoint could not be set up
                self.log("error", "rule-failed", rule=rule.text, msg=exc.strerror or str(exc))

    def loop_through(self, start: RuleState) -> list[str]:
        """The listeners a connection to `start` would pass through and come back to it
        (empty if it does not): targets given as IP addresses, followed rule to rule.
        Names and `wsl` are only known at run time: the server catches those loops."""
        path = [start.listeners[0].bound if start.listeners else start.rule.text]
        rs = start
        for _ in range(len(self.rules)):
            nxt = next((r for r in self.rules if _lands_on(rs.rule, r)), None)
            if nxt is None:
                return []
            path.append(str(rs.rule.target))
            if nxt is start:
                return path
            rs = nxt
        return []

    def remove(self, rs: RuleState) -> None:
        """Stops listening; open connections drain, then the rule is forgotten."""
        rs.closing = True
        self.ports.stop(rs)
        self.on_change()
        self.log("info", "rule-removed", rule=rs.id, active=len(rs.active))
        self.forget_if_drained(rs)

    def forget_if_drained(self, rs: RuleState) -> None:
        if rs.closing and not rs.active and rs in self.rules:
            self.rules.remove(rs)

    def stop_listening(self) -> None:
        """Every rule stops listening; one that fails to must not keep the rest open."""
        for rs in self.rules:
            try:
                self.ports.stop(rs)
            except Exception as exc:
                msg = f"stopping rule {rs.id}: {type(exc).__name__}: {exc}"
                self.log("error", "internal-error", msg=msg)

    def count(self, origin: Origin) -> int:
        return sum(1 for rs in self.rules if rs.origin == origin and not rs.closing)

    async def close_idle(self, idle_timeout: float) -> None:
        """--idle-timeout: one timer for all connections, cheaper than one per connection."""
        step = min(1.0, idle_timeout / 4)
        while True:
            await asyncio.sleep(step)
            for rs in self.rules:
                for conn in list(rs.active):
                    relay = conn.relay
                    if relay is None:
                        continue
                    moved = relay.up + relay.down
                    if moved != conn.seen:
                        conn.seen, conn.idle = moved, 0.0
                        continue
                    conn.idle += step
                    if conn.idle >= idle_timeout:
                        relay.close(IDLE_TIMEOUT)


def _listens_on(rs: RuleState, endpoint: Endpoint) -> bool:
    for lst in rs.listeners:
        try:
            host, port = lst.sock.getsockname()[:2]
        except OSError:
            continue  # closed
        if port == endpoint.port and overlaps(host, endpoint.host):
            return True
    return False


def _lands_on(rule: Rule, other: RuleState) -> bool:
    same = rule.proto == other.rule.proto
    return same and any(_reaches(rule.target, lst.sock) for lst in other.listeners)


def _reaches(target: Endpoint, sock: socket.socket) -> bool:
    """Whether connecting to `target` lands on this listening socket."""
    try:
        host, port = sock.getsockname()[:2]
        want = ipaddress.ip_address(target.host)
    except (OSError, ValueError):
        return False  # a closed socket, or a name: not judged here
    if port != target.port:
        return False
    bound = ipaddress.ip_address(host)
    if bound == want:
        return True
    # A wildcard listener takes every local address of its family; loopback is one.
    return bound.is_unspecified and bound.version == want.version and want.is_loopback
