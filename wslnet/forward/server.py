"""The forwarder: listeners per rule, a task per connection, an orderly shutdown.

Shutdown follows uvicorn: stop listening, let open connections drain for up to
`drain` seconds, then reset what is left.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import sys
import time
from dataclasses import dataclass, field

from wslnet.errors import ListenError
from wslnet.forward.config import ForwardConfig
from wslnet.forward.log import EventLog
from wslnet.forward.relay import Relay, set_reset_on_close
from wslnet.forward.relay_proto import ProtocolRelay
from wslnet.forward.resolve import ResolveError, Resolver
from wslnet.forward.rules import Endpoint, Rule, format_hostport

_LISTEN_ERRORS = {
    errno.EADDRINUSE: "address already in use: another program listens there; "
    "stop it or pick another port",
    errno.EADDRNOTAVAIL: "address not available: no interface here has that address",
    errno.EACCES: "permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE)",
    errno.EAFNOSUPPORT: "this address family is not supported here (IPv6 disabled?)",
}
_FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ConnectError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Connection:
    id: int
    rule: RuleState
    client: str
    started: float
    target: str = ""
    relay: Relay | None = None
    idle: float = 0.0
    seen: int = 0


@dataclass(eq=False)
class RuleState:
    index: int
    rule: Rule
    sock: socket.socket
    bound: str
    active: set[Connection] = field(default_factory=set)
    accepted: int = 0
    rejected: int = 0
    task: asyncio.Task[None] | None = None


def bind_listener(endpoint: Endpoint, backlog: int = 4096) -> socket.socket:
    """Opens a listening socket exactly on `endpoint`, or raises ListenError."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    where = format_hostport(endpoint.host, endpoint.port)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
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
        sock.bind((endpoint.host, endpoint.port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {where}: {_listen_cause(exc)}") from None
    return sock


def _listen_cause(exc: OSError) -> str:
    if exc.errno in _LISTEN_ERRORS:
        return _LISTEN_ERRORS[exc.errno]
    return exc.strerror or str(exc)


def _connect_reason(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if isinstance(exc, OSError):
        return f"error: {exc.strerror or exc}"
    return f"error: {exc}"


def _peer(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return format_hostport(str(addr[0]), int(addr[1]))
    return str(addr)


class Forwarder:
    def __init__(self, config: ForwardConfig, log: EventLog) -> None:
        self.config = config
        self.log = log
        self.engine = config.resolved_engine
        self.rules: list[RuleState] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._forced = False
        self.loop = asyncio.get_running_loop()
        self.resolver = Resolver(self.loop)

    # -- start -------------------------------------------------------------------------
    def open_listeners(self) -> None:
        """Binds every rule; on any failure closes what was opened and raises ListenError."""
        try:
            for index, rule in enumerate(self.config.rules, 1):
                sock = bind_listener(rule.listen)
                bound = _peer(sock.getsockname())
                self.rules.append(RuleState(index, rule, sock, bound))
        except ListenError:
            for rs in self.rules:
                rs.sock.close()
            self.rules.clear()
            raise
        for rs in self.rules:
            rs.task = self.loop.create_task(self._accept_loop(rs))
            self.log(
                "info",
                "listening",
                rule=rs.index,
                listen=rs.bound,
                target=str(rs.rule.target),
                engine=self.engine,
            )

    # -- accept ------------------------------------------------------------------------
    async def _accept_loop(self, rs: RuleState) -> None:
        loop = self.loop
        while True:
            try:
                csock, addr = await loop.sock_accept(rs.sock)
            except OSError as exc:
                # Out of descriptors (or a transient accept error): wait for some to free up.
                cause = "out of file descriptors" if exc.errno in _FD_EXHAUSTED else exc.strerror
                self.log("error", "accept-failed", rule=rs.index, msg=str(cause))
                await asyncio.sleep(0.1)
                continue
            self._accepted(rs, csock, addr)
            # Take what else is queued without going back through the loop.
            while True:
                try:
                    csock, addr = rs.sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                self._accepted(rs, csock, addr)

    def _accepted(self, rs: RuleState, csock: socket.socket, addr: object) -> None:
        csock.setblocking(False)
        rs.accepted += 1
        limit = self.config.max_conns
        if limit is not None and len(rs.active) >= limit:
            rs.rejected += 1
            set_reset_on_close(csock)
            csock.close()
            self.log(
                "warning",
                "rejected",
                rule=rs.index,
                client=_peer(addr),
                reason="max-conns",
                limit=limit,
            )
            return
        try:
            csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        conn = Connection(next(self._ids), rs, _peer(addr), time.monotonic())
        rs.active.add(conn)
        task = self.loop.create_task(self._serve(conn, csock))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- one connection ----------------------------------------------------------------
    async def _serve(self, conn: Connection, csock: socket.socket) -> None:
        rs = conn.rule
        reason = "closed"
        try:
            try:
                tsock = await self._connect(conn)
            except ConnectError as exc:
                set_reset_on_close(csock)
                csock.close()
                reason = f"connect-{exc.reason}"
                return
            except BaseException:
                csock.close()
                reason = "shutdown"
                raise
            relay: Relay
            if self.engine == "splice" and sys.platform == "linux":
                from wslnet.forward.relay_splice import SpliceRelay

                relay = SpliceRelay(self.loop, csock, tsock)
            else:
                relay = ProtocolRelay(self.loop, csock, tsock)
            conn.relay = relay
            relay.start()
            try:
                reason = await asyncio.shield(relay.done)
            except asyncio.CancelledError:
                relay.abort("shutdown")
                reason = "shutdown"
                raise
        finally:
            rs.active.discard(conn)
            self._log_end(conn, reason)

    async def _connect(self, conn: Connection) -> socket.socket:
        target = conn.rule.rule.target
        conn.target = str(target)
        try:
            addrs = await self.resolver.resolve(target)
        except ResolveError as exc:
            raise ConnectError(f"dns: {exc}") from None
        deadline = self.loop.time() + self.config.connect_timeout
        last: BaseException | None = None
        for family, sockaddr in addrs:
            conn.target = format_hostport(*sockaddr)
            try:
                return await self._connect_one(family, sockaddr, deadline - self.loop.time())
            except (OSError, asyncio.TimeoutError) as exc:
                last = exc
        self.resolver.forget(target)
        assert last is not None
        raise ConnectError(_connect_reason(last))

    async def _connect_one(
        self, family: int, sockaddr: tuple[str, int], timeout: float
    ) -> socket.socket:
        if timeout <= 0:
            raise asyncio.TimeoutError
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.wait_for(self.loop.sock_connect(sock, sockaddr), timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def _log_end(self, conn: Connection, reason: str) -> None:
        level = "info" if reason in ("closed", "idle-timeout", "shutdown") else "warning"
        if not self.log.enabled(level):
            return
        relay = conn.relay
        self.log(
            level,
            "conn",
            id=conn.id,
            rule=conn.rule.index,
            client=conn.client,
            target=conn.target,
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
            return
        self.log(
            "info",
            "stopping",
            drain=self.config.drain,
            active=sum(len(rs.active) for rs in self.rules),
        )
        self._stopping.set()

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
            if rs.task is not None:
                rs.task.cancel()
            rs.sock.close()
        if self.tasks and not self._forced:
            await asyncio.wait(set(self.tasks), timeout=self.config.drain)
        if self.tasks:
            self._abort_all("shutdown")
            for task in list(self.tasks):
                task.cancel()
            await asyncio.wait(set(self.tasks), timeout=2.0)
        self.log("info", "stopped")

    def _abort_all(self, reason: str) -> None:
        for rs in self.rules:
            for conn in list(rs.active):
                if conn.relay is not None:
                    conn.relay.abort(reason)
