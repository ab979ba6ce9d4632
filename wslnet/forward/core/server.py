"""The forwarder: startup (listen on every rule), serve, shutdown.

Shutdown follows uvicorn: stop listening, let open connections drain for up to
`drain` seconds, then reset what is left. The rule table, the accept-and-dial strategy
and the connection life cycle live beside it (table.py, accept.py, conn.py).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import sys
import time
from collections.abc import Callable

from wslnet.forward.core import accept
from wslnet.forward.core.admit import admit, log_refusal
from wslnet.forward.core.config import ForwardConfig
from wslnet.forward.core.conn import Connection, dialled_by, log_end
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import Resolver
from wslnet.forward.core.rules import Endpoint, Rule
from wslnet.forward.core.table import ListeningSocket, Origin, RuleState, RuleTable
from wslnet.forward.core.udp import SessionBudget, UdpRule
from wslnet.forward.data.address import Address
from wslnet.forward.data.dial import Ends, client_went_away
from wslnet.forward.data.ends import SHUTDOWN, End
from wslnet.forward.data.relay import Poller, Relay, RelayFactory, set_reset_on_close
from wslnet.forward.data.relay_proto import ProtocolRelay

_FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def _splice_engine(loop: asyncio.AbstractEventLoop) -> tuple[Poller, RelayFactory]:
    """The Linux data path: one edge-triggered epoll, copy-then-splice relays."""
    if sys.platform != "linux":  # ForwardConfig refuses --engine splice elsewhere
        raise AssertionError("the splice engine is Linux-only")
    else:
        from wslnet.forward.data.epoll import EdgePoller
        from wslnet.forward.data.relay_splice import SpliceRelay

        poller = EdgePoller(loop)

        def factory(
            loop: asyncio.AbstractEventLoop,
            client: socket.socket,
            target: socket.socket,
            on_end: Callable[[End], None],
            spoke: bool,
        ) -> Relay:
            return SpliceRelay(loop, client, target, on_end, poller, spoke)

        return poller, factory


class Forwarder:
    def __init__(self, config: ForwardConfig, log: EventLog) -> None:
        self.config = config
        self.log = log
        self.engine = config.resolved_engine
        self.started_at = time.time()
        self.loop = asyncio.get_running_loop()
        self.resolver = Resolver(
            self.loop, config.resolve_interval, self._target_moved, config.boot
        )
        poller: Poller | None = None
        self.relay_factory: RelayFactory = ProtocolRelay
        if self.engine == "splice":
            poller, self.relay_factory = _splice_engine(self.loop)
        self.own: set[Ends] = set()  # both ends of each connection we dialled
        self.strategy = accept.choose(
            self.loop,
            self.resolver,
            config.connect_timeout,
            self._accepted,
            self._accept_failed,
            self.own,
            poller,
        )
        self.table = RuleTable(log, config.allow_any, self)
        self.udp_budget = SessionBudget(config.udp_budget)  # shared by every UDP rule
        self._conn_ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._forced = False

    @property
    def active(self) -> int:
        return self.table.active

    # -- startup -----------------------------------------------------------------------
    async def startup(self, rules: list[tuple[Rule, Origin]]) -> None:
        """Listens on every rule; on any failure closes what was opened and raises."""
        try:
            for rule, origin in rules:
                await self.table.add(rule, origin)
        except BaseException:
            self.table.stop_listening()
            self.table.rules.clear()
            raise

    async def start(self, rs: RuleState) -> None:
        """Serves a rule the table has bound (the table's Ports)."""
        rule, cfg, target = rs.rule, self.config, str(rs.rule.target)
        if rule.proto == "udp":
            socks = [lst.sock for lst in rs.listeners]
            rs.udp = UdpRule(rule, rs.id, socks, self.resolver, self.log, cfg.udp_timeout,
                             cfg.udp_max_sessions, rs.counters, budget=self.udp_budget)  # fmt: skip
            rs.udp.start()
        for lst in rs.listeners:
            if rs.udp is not None:
                self.log("info", "listening", rule=rs.id, listen=f"udp/{lst.bound}",
                         target=target, udp_timeout=cfg.udp_timeout)  # fmt: skip
                continue
            self.strategy.watch(lst)
            self.log("info", "listening", rule=rs.id, listen=lst.bound, target=target,
                     engine=self.engine)  # fmt: skip
        self._note_ports()

    def _note_ports(self) -> None:
        """The TCP ports we listen on now, for the strategy's loop check."""
        self.strategy.own_ports = {
            lst.sock.getsockname()[1]
            for other in self.table.rules
            if other.rule.proto == "tcp" and not other.closing
            for lst in other.listeners
            if lst.sock.fileno() >= 0
        }

    def stop(self, rs: RuleState) -> None:
        """Stops listening on a rule (idempotent). UDP sessions end with it."""
        if rs.udp is not None:
            rs.udp.close()  # its transports own the sockets: nothing more to undo here
            return
        for lst in rs.listeners:
            self.strategy.unwatch(lst)
            lst.sock.close()
        self._note_ports()

    def _target_moved(self, target: Endpoint, old: list[Address], new: list[Address]) -> None:
        old_text = ",".join(a[1][0] for a in old)
        new_text = ",".join(a[1][0] for a in new)
        self.log("info", "target-moved", target=target.host, old=old_text, new=new_text)

    # -- serve -------------------------------------------------------------------------
    def _accepted(self, lst: ListeningSocket, csock: socket.socket, addr: object) -> None:
        rs = lst.rule
        csock.setblocking(False)
        own = self.own
        looped = bool(own) and dialled_by(own, csock, addr)  # our own dial, come back
        refusal = admit(rs.rule, addr, len(rs.active), self.config.max_conns, looped)
        if refusal is not None:
            rs.counters.refused(refusal)
            _refuse(csock)
            log_refusal(self.log, rs.id, "tcp", addr, refusal)
            return
        rs.counters.accepted += 1
        if sys.platform == "win32":  # accepted sockets do not inherit it there
            try:
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        conn = Connection(next(self._conn_ids), rs, addr, csock, time.monotonic(), self)
        rs.active.add(conn)
        self.strategy.dial(conn)

    def _accept_failed(self, lst: ListeningSocket, exc: OSError) -> None:
        if client_went_away(exc):  # one client that reset before its accept: no fault here
            self.log("debug", "accept-failed", rule=lst.rule.id, msg="client went away")
            return
        cause = "out of file descriptors" if exc.errno in _FD_EXHAUSTED else exc.strerror
        key = f"accept-failed:{lst.rule.id}"
        self.log.limited(key, "error", "accept-failed", rule=lst.rule.id, msg=str(cause))

    def ended(self, conn: Connection, reason: End) -> None:
        """A connection's end: counted, logged, and the rule or the drain told."""
        rs = conn.rule
        rs.active.discard(conn)
        relay = conn.relay
        up, down = (relay.up, relay.down) if relay is not None else (0, 0)
        rs.counters.finished(reason, up, down)
        log_end(self.log, conn, reason, up, down)
        if rs.closing:
            self.table.forget_if_drained(rs)
        if self._stopping.is_set() and not self.active:
            self._drained.set()

    async def serve(self) -> None:
        sweeper = None
        if self.config.idle_timeout is not None:
            sweeper = self.loop.create_task(self.table.close_idle(self.config.idle_timeout))
        await self._stopping.wait()
        if sweeper is not None:
            sweeper.cancel()
        await self.shutdown()

    # -- shutdown ----------------------------------------------------------------------
    def request_stop(self) -> None:
        """The first call drains, the second ends every connection at once."""
        if self._stopping.is_set():
            if not self._forced:
                self._forced = True
                self.log("warning", "stopping", msg="second signal: closing all connections now")
                self._abort_all(SHUTDOWN)
                self._drained.set()
            return
        # Stop listening before saying so: once the line is out, new connections are refused.
        self.table.stop_listening()
        self.log("info", "stopping", drain=self.config.drain, active=self.active)
        self._stopping.set()
        if not self.active:
            self._drained.set()

    async def shutdown(self) -> None:
        self.table.stop_listening()
        if self.active:
            try:
                await asyncio.wait_for(self._drained.wait(), self.config.drain)
            except asyncio.TimeoutError:
                pass
        if self.active:
            self._abort_all(SHUTDOWN)
            # Aborted relays finish on the next loop turns.
            for _ in range(100):
                if not self.active:
                    break
                await asyncio.sleep(0.01)
        self.log("info", "stopped")

    def _abort_all(self, reason: End) -> None:
        for rs in self.table.rules:
            for conn in list(rs.active):
                conn.abort(reason)


def _refuse(csock: socket.socket) -> None:
    set_reset_on_close(csock)
    csock.close()
