"""The forwarder: listeners per rule, connections driven by callbacks, an orderly shutdown.

Shutdown follows uvicorn: stop listening, let open connections drain for up to
`drain` seconds, then reset what is left.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import itertools
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from wslnet.errors import ListenError, UsageError
from wslnet.forward.config import ForwardConfig
from wslnet.forward.dial import CALLBACKS, Dialer, connect_reason, dial_async
from wslnet.forward.log import EventLog, end_level, reason_key
from wslnet.forward.relay import Poller, Relay, set_reset_on_close
from wslnet.forward.relay_proto import ProtocolRelay
from wslnet.forward.resolve import Address, ResolveError, Resolver
from wslnet.forward.rules import Endpoint, Rule, format_addr, format_hostport
from wslnet.forward.udp import UdpRule, big_buffers

_LISTEN_ERRORS = {
    errno.EADDRINUSE: "address already in use: another program listens there; "
    "stop it or pick another port",
    errno.EADDRNOTAVAIL: "address not available: no interface here has that address",
    errno.EACCES: "permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE)",
    errno.EAFNOSUPPORT: "this address family is not supported here (IPv6 disabled?)",
}
_FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_ACCEPT_BATCH = 64  # accepts per wake-up before other work gets a turn


@dataclass(eq=False)
class Connection:
    id: int
    rule: RuleState
    client: object  # the peer address as accept() gave it; formatted only when logged
    csock: socket.socket
    started: float
    target: object = None  # the address dialled, or the rule's target before that
    relay: Relay | None = None
    dialer: Dialer | None = None
    task: asyncio.Task[None] | None = None
    idle: float = 0.0
    seen: int = 0


@dataclass(eq=False)
class Listener:
    rule: RuleState
    sock: socket.socket
    bound: str
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class RuleState:
    id: int
    rule: Rule
    listeners: list[Listener] = field(default_factory=list)
    allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    active: set[Connection] = field(default_factory=set)
    accepted: int = 0
    rejected: int = 0
    denied: int = 0
    up: int = 0  # bytes of finished connections; active ones add their relay's counts
    down: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    closing: bool = False  # removed: no longer listening, connections draining
    udp: UdpRule | None = None
    origin: str = "cli"  # cli, config, api or auto: a reload replaces only "config" rules

    def allowed(self, addr: object) -> bool:
        if self.allow is None or not isinstance(addr, tuple):
            return True
        try:
            ip = ipaddress.ip_address(str(addr[0]).split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allow)


def bind_listener(
    endpoint: Endpoint, kind: int = socket.SOCK_STREAM, backlog: int = 4096
) -> socket.socket:
    """Opens a listening socket exactly on `endpoint`, or raises ListenError."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    where = format_hostport(endpoint.host, endpoint.port)
    if kind == socket.SOCK_DGRAM:
        where = "udp/" + where
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise ListenError(f"cannot listen on {where}: {_listen_cause(exc)}") from None
    try:
        if sys.platform == "win32":
            # SO_REUSEADDR on Windows lets another program steal the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if sys.platform != "win32" and kind == socket.SOCK_STREAM:
            # Accepted sockets inherit it on Linux and the BSDs: one setsockopt less each.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((endpoint.host, endpoint.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
        else:
            big_buffers(sock)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {where}: {_listen_cause(exc)}") from None
    return sock


def bind_rule(rule: Rule, log: EventLog) -> list[socket.socket]:
    """The rule's listening sockets: one, or 127.0.0.1 and ::1 on the same port."""
    kind = socket.SOCK_DGRAM if rule.proto == "udp" else socket.SOCK_STREAM
    hosts = rule.listen_hosts()
    if len(hosts) == 1:
        return [bind_listener(rule.listen, kind)]
    for _ in range(5):
        first = bind_listener(Endpoint(hosts[0], rule.listen.port), kind)
        port = first.getsockname()[1]
        try:
            return [first, bind_listener(Endpoint(hosts[1], port), kind)]
        except ListenError as exc:
            first.close()
            if rule.listen.port == 0 and "in use" in exc.message:
                continue  # the free v4 port is taken on v6: draw another
            if "not available" in exc.message or "not supported" in exc.message:
                log("warning", "no-ipv6", rule=rule.text, msg="::1 unavailable: IPv4 only")
                return [bind_listener(Endpoint(hosts[0], port), kind)]
            raise
    raise ListenError(f"cannot find a port free on both 127.0.0.1 and ::1 for {rule.text!r}")


def _listen_cause(exc: OSError) -> str:
    if exc.errno in _LISTEN_ERRORS:
        return _LISTEN_ERRORS[exc.errno]
    return exc.strerror or str(exc)


class Forwarder:
    def __init__(self, config: ForwardConfig, log: EventLog) -> None:
        self.config = config
        self.log = log
        self.engine = config.resolved_engine
        self.rules: list[RuleState] = []
        self.started_at = time.time()
        self.config_path: Path | None = None
        self._ids = itertools.count(1)
        self._rule_ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._forced = False
        self.loop = asyncio.get_running_loop()
        self.resolver = Resolver(self.loop, config.resolve_interval, self._target_moved)
        self.poller: Poller | None = None
        if self.engine == "splice" and sys.platform == "linux":
            from wslnet.forward.epoll import EdgePoller

            self.poller = EdgePoller(self.loop)

    def _target_moved(self, target: Endpoint, old: list[Address], new: list[Address]) -> None:
        self.log(
            "info",
            "target-moved",
            target=target.host,
            old=",".join(a[1][0] for a in old),
            new=",".join(a[1][0] for a in new),
        )

    @property
    def active(self) -> int:
        return sum(len(rs.active) for rs in self.rules)

    # -- listening ---------------------------------------------------------------------
    async def open_listeners(self, file_rules: list[Rule] | None = None) -> None:
        """Binds every rule; on any failure closes what was opened and raises ListenError."""
        try:
            for rule in self.config.rules:
                await self.add_rule(rule)
            for rule in file_rules or []:
                await self.add_rule(rule, "config")
        except ListenError:
            for rs in list(self.rules):
                self._stop_listening(rs)
            self.rules.clear()
            raise

    async def add_rule(self, rule: Rule, origin: str = "cli") -> RuleState:
        """Starts listening for one more rule (at start, on reload, from the API)."""
        rs = RuleState(next(self._rule_ids), rule, allow=self._allow_list(rule), origin=origin)
        for sock in bind_rule(rule, self.log):
            rs.listeners.append(Listener(rs, sock, format_addr(sock.getsockname())))
        self.rules.append(rs)
        if rule.proto == "udp":
            rs.udp = UdpRule(
                rule,
                rs.id,
                [lst.sock for lst in rs.listeners],
                self.resolver,
                self.log,
                self.config.udp_timeout,
                self.config.udp_max_sessions,
                rs.allowed,
            )
            await rs.udp.start()
            for lst in rs.listeners:
                self.log(
                    "info",
                    "listening",
                    rule=rs.id,
                    listen="udp/" + lst.bound,
                    target=str(rule.target),
                    udp_timeout=self.config.udp_timeout,
                )
            return rs
        for lst in rs.listeners:
            if CALLBACKS:
                self.loop.add_reader(lst.sock.fileno(), self._on_acceptable, lst)
            else:
                lst.task = self.loop.create_task(self._accept_task(lst))
            self.log(
                "info",
                "listening",
                rule=rs.id,
                listen=lst.bound,
                target=str(rule.target),
                engine=self.engine,
            )
        return rs

    async def apply(self, rules: list[Rule], origin: str) -> None:
        """Makes the rules of `origin` these: removed ones stop listening (their connections
        drain), new ones start, changed ones restart. A rule that cannot start is logged."""
        current = {rs.rule: rs for rs in self.rules if rs.origin == origin and not rs.closing}
        for rule, rs in current.items():
            if rule not in rules:
                self.remove_rule(rs)
        for rule in rules:
            if rule in current:
                continue
            try:
                await self.add_rule(rule, origin)
            except (ListenError, UsageError) as exc:
                self.log("error", "rule-failed", rule=rule.text, msg=exc.message)

    async def reload_config(self) -> tuple[bool, str]:
        """Reads the config file again; an invalid one changes nothing."""
        if self.config_path is None:
            return False, "no config file in use (--config)"
        from wslnet.forward.configfile import load

        try:
            conf = load(self.config_path)
            for rule in conf.rules:
                self._allow_list(rule)  # a rule beyond loopback must say who may connect
        except UsageError as exc:
            self.log("error", "reload-rejected", msg=exc.message)
            return False, exc.message
        await self.apply(conf.rules, "config")
        n = sum(1 for rs in self.rules if rs.origin == "config" and not rs.closing)
        self.log("info", "reloaded", config=str(self.config_path), rules=n)
        return True, f"{n} rules from {self.config_path}"

    def remove_rule(self, rs: RuleState) -> None:
        """Stops listening; open connections drain, then the rule is forgotten."""
        rs.closing = True
        self._stop_listening(rs)
        self.log("info", "rule-removed", rule=rs.id, active=len(rs.active))
        self._forget_if_drained(rs)

    def _forget_if_drained(self, rs: RuleState) -> None:
        if rs.closing and not rs.active and rs in self.rules:
            self.rules.remove(rs)

    def _stop_listening(self, rs: RuleState) -> None:
        if rs.udp is not None:
            rs.udp.close()  # datagrams have no stream to drain
            return
        for lst in rs.listeners:
            if lst.task is not None:
                lst.task.cancel()
            elif CALLBACKS and lst.sock.fileno() >= 0:
                self.loop.remove_reader(lst.sock.fileno())
            lst.sock.close()

    def _allow_list(self, rule: Rule) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
        if rule.allow is not None:
            return [ipaddress.ip_network(a, strict=False) for a in rule.allow]
        if rule.listen.loopback or self.config.allow_any:
            if not rule.listen.loopback:
                self.log(
                    "warning",
                    "allow-any",
                    rule=rule.text,
                    msg="anyone who can reach this address may connect",
                )
            return None
        raise UsageError(
            f"rule {rule.text!r} listens on {rule.listen.host}, beyond this machine: say who "
            "may connect with --allow CIDR (or allow = [...] in the config file), "
            "or --allow-any"
        )

    def _on_acceptable(self, lst: Listener) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                csock, addr = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._accept_failed(lst.rule, exc)
                # Stop watching for a moment, or the loop would spin on the same error.
                self.loop.remove_reader(lst.sock.fileno())
                self.loop.call_later(0.1, self._resume_accepting, lst)
                return
            self._accepted(lst.rule, csock, addr)

    def _resume_accepting(self, lst: Listener) -> None:
        if not self._stopping.is_set() and not lst.rule.closing:
            self.loop.add_reader(lst.sock.fileno(), self._on_acceptable, lst)

    async def _accept_task(self, lst: Listener) -> None:
        while True:
            try:
                csock, addr = await self.loop.sock_accept(lst.sock)
            except OSError as exc:
                self._accept_failed(lst.rule, exc)
                await asyncio.sleep(0.1)
                continue
            self._accepted(lst.rule, csock, addr)

    def _accept_failed(self, rs: RuleState, exc: OSError) -> None:
        cause = "out of file descriptors" if exc.errno in _FD_EXHAUSTED else exc.strerror
        self.log("error", "accept-failed", rule=rs.id, msg=str(cause))

    # -- one connection ----------------------------------------------------------------
    def _accepted(self, rs: RuleState, csock: socket.socket, addr: object) -> None:
        csock.setblocking(False)
        rs.accepted += 1
        if rs.allow is not None and not rs.allowed(addr):
            rs.denied += 1
            set_reset_on_close(csock)
            csock.close()
            self.log(
                "warning", "denied", rule=rs.id, client=format_addr(addr), reason="not-allowed"
            )
            return
        limit = self.config.max_conns
        if limit is not None and len(rs.active) >= limit:
            rs.rejected += 1
            set_reset_on_close(csock)
            csock.close()
            self.log(
                "warning",
                "rejected",
                rule=rs.id,
                client=format_addr(addr),
                reason="max-conns",
                limit=limit,
            )
            return
        if sys.platform == "win32":
            try:
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        conn = Connection(next(self._ids), rs, addr, csock, time.monotonic())
        target = rs.rule.target
        conn.target = target
        rs.active.add(conn)
        addrs = self.resolver.cached(target)
        if addrs is not None and CALLBACKS:
            self._dial(conn, addrs)
        else:
            conn.task = self.loop.create_task(self._dial_task(conn))

    def _dial(self, conn: Connection, addrs: list[Address]) -> None:
        def done(tsock: socket.socket | None, reason: str) -> None:
            dialer = conn.dialer
            assert dialer is not None
            conn.target = dialer.sockaddr
            conn.dialer = None
            if tsock is None:
                self._dial_failed(conn, reason)
            else:
                self._connected(conn, tsock, dialer.early_read)

        conn.dialer = Dialer(self.loop, addrs, self.config.connect_timeout, done, self.poller)
        conn.dialer.start()

    async def _dial_task(self, conn: Connection) -> None:
        """For host names (resolved first) and for loops that cannot watch sockets."""
        try:
            addrs = await self.resolver.resolve(conn.rule.rule.target)
            if CALLBACKS:
                conn.task = None
                self._dial(conn, addrs)
                return
            tsock = await dial_async(self.loop, addrs, self.config.connect_timeout)
        except ResolveError as exc:
            self._dial_failed(conn, f"dns: {exc}")
            return
        except (OSError, asyncio.TimeoutError) as exc:
            self._dial_failed(conn, connect_reason(exc))
            return
        except asyncio.CancelledError:
            self._end(conn, "shutdown", reset=True)
            raise
        finally:
            conn.task = None
        self._connected(conn, tsock)

    def _dial_failed(self, conn: Connection, reason: str) -> None:
        self.resolver.forget(conn.rule.rule.target)
        self._end(conn, f"connect-{reason}", reset=True)

    def _connected(self, conn: Connection, tsock: socket.socket, spoke: bool = True) -> None:
        relay: Relay
        if self.engine == "splice" and sys.platform == "linux":
            from wslnet.forward.relay_splice import SpliceRelay

            assert self.poller is not None
            relay = SpliceRelay(
                self.loop, conn.csock, tsock, lambda why: self._end(conn, why), self.poller, spoke
            )
        else:
            relay = ProtocolRelay(self.loop, conn.csock, tsock, lambda why: self._end(conn, why))
        conn.relay = relay
        relay.start()

    def _end(self, conn: Connection, reason: str, reset: bool = False) -> None:
        """The one place a connection ends: sockets closed, counted, logged."""
        rs = conn.rule
        if conn not in rs.active:
            return
        rs.active.discard(conn)
        relay = conn.relay
        if relay is None:  # never relayed: the client socket is still ours
            if reset:
                set_reset_on_close(conn.csock)
            conn.csock.close()
        else:
            rs.up += relay.up
            rs.down += relay.down
        if reason != "closed":
            rs.ended[reason_key(reason)] += 1
        self._log_end(conn, reason)
        if rs.closing:
            self._forget_if_drained(rs)
        if self._stopping.is_set() and not self.active:
            self._drained.set()

    def _abort(self, conn: Connection, reason: str) -> None:
        if conn.relay is not None:
            conn.relay.abort(reason)
            return
        if conn.dialer is not None:
            conn.dialer.cancel()
            conn.dialer = None
        if conn.task is not None:
            conn.task.cancel()
        self._end(conn, reason, reset=True)

    def _log_end(self, conn: Connection, reason: str) -> None:
        level = end_level(reason)
        if not self.log.enabled(level):
            return
        relay = conn.relay
        self.log(
            level,
            "conn",
            id=conn.id,
            rule=conn.rule.id,
            client=format_addr(conn.client),
            target=format_addr(conn.target),
            up=relay.up if relay else 0,
            down=relay.down if relay else 0,
            duration=round(time.monotonic() - conn.started, 6),
            reason=reason,
        )

    # -- timers ------------------------------------------------------------------------
    async def _sweep_idle(self, idle_timeout: float) -> None:
        """One timer for all connections: cheaper than one per connection."""
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
                        relay.close("idle-timeout")

    # -- run and stop ------------------------------------------------------------------
    def request_stop(self) -> None:
        if self._stopping.is_set():
            if not self._forced:
                self._forced = True
                self.log("warning", "stopping", msg="second signal: closing all connections now")
                self._abort_all("shutdown")
                self._drained.set()
            return
        # Stop listening before saying so: once the line is out, new connections are refused.
        for rs in self.rules:
            self._stop_listening(rs)
        self.log("info", "stopping", drain=self.config.drain, active=self.active)
        self._stopping.set()
        if not self.active:
            self._drained.set()

    async def serve(self) -> None:
        sweeper = None
        if self.config.idle_timeout is not None:
            sweeper = self.loop.create_task(self._sweep_idle(self.config.idle_timeout))
        await self._stopping.wait()
        if sweeper is not None:
            sweeper.cancel()
        await self.shutdown()

    async def shutdown(self) -> None:
        for rs in self.rules:
            self._stop_listening(rs)
        if self.active:
            try:
                await asyncio.wait_for(self._drained.wait(), self.config.drain)
            except asyncio.TimeoutError:
                pass
        if self.active:
            self._abort_all("shutdown")
            # Aborted relays finish on the next loop turns.
            for _ in range(100):
                if not self.active:
                    break
                await asyncio.sleep(0.01)
        self.log("info", "stopped")

    def _abort_all(self, reason: str) -> None:
        for rs in self.rules:
            for conn in list(rs.active):
                self._abort(conn, reason)
