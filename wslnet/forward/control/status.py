"""What a running forwarder reports: one typed snapshot that the API's /v1/status,
/metrics and `wslnet status` all read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from wslnet.contract import SCHEMA
from wslnet.errors import WslnetError
from wslnet.forward.control.statefile import register
from wslnet.forward.core.rules import Proto, format_addr, format_hostport
from wslnet.forward.core.server import Forwarder
from wslnet.forward.core.table import Origin, RuleState
from wslnet.registry import RegisteredRule, Registration, registration_path

if TYPE_CHECKING:
    from wslnet.forward.control.api import ControlApi
    from wslnet.forward.control.client import Seen


@dataclass(frozen=True)
class UdpStatus:
    udp_timeout: float
    udp_sessions_active: int
    udp_sessions_total: int
    udp_datagrams_dropped: int  # a socket's send queue was full (the target or client lagged)


@dataclass(frozen=True)
class DialStatus:
    """The last dial to the target: is it up, as of when."""

    ok: bool
    at: float
    reason: str


# Ports browsers refuse to open (Chromium's and Firefox's restricted-port lists).
_UNSAFE_PORTS = frozenset({
    1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
    101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161,
    179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563,
    587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 5060, 5061,
    6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080,
})  # fmt: skip


def browser_url(proto: Proto, bound: tuple[str, int] | None) -> str | None:
    """Where a browser on this machine opens a TCP rule's listener (None: it cannot)."""
    if proto != "tcp" or bound is None or bound[1] in _UNSAFE_PORTS:
        return None
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bound[0], bound[0])
    return f"http://{format_hostport(host, bound[1])}/"


@dataclass(frozen=True)
class RuleStatus:
    id: int
    proto: Proto
    rule: str
    origin: Origin
    listen: list[str]
    target: str
    resolved: list[str]
    resolved_at: float | None
    allow: list[str] | None
    closing: bool
    connections_active: int  # open connections, or UDP sessions
    connections_total: int
    rejected: int  # over --max-conns or --udp-max-sessions, or a loop
    denied: int  # not on the allow list, or no peer address
    bytes_up: int
    bytes_down: int
    errors: dict[str, int]  # connections that ended badly, by reason
    udp: UdpStatus | None = None
    max_connections: int | None = None  # --max-conns (TCP) or --udp-max-sessions
    last_dial: DialStatus | None = None  # TCP only
    open_url: str | None = None  # a browser here can open it

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        udp = doc.pop("udp")
        return {**doc, **(udp or {})}


@dataclass(frozen=True)
class Status:
    started: float
    uptime: float
    engine: str
    config: str | None
    rules: list[RuleStatus]
    log_dropped: int = 0  # log lines lost because stderr (or the log file) did not keep up

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "started": self.started,
            "uptime": self.uptime,
            "engine": self.engine,
            "config": self.config,
            "log_dropped": self.log_dropped,
            "rules": [r.as_json() for r in self.rules],
        }


@dataclass(frozen=True)
class OpenFlow:
    """An open TCP connection or UDP session."""

    proto: Proto
    rule: int
    client: str
    target: str
    up: int
    down: int
    age: float
    state: str  # connecting, relaying (TCP) or open (UDP)
    idle: float | None = None  # UDP: seconds since the last datagram
    id: int | None = None  # TCP connections are numbered as in the log

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def rule_status(fwd: Forwarder, rs: RuleState) -> RuleStatus:
    target = rs.rule.target
    resolved = fwd.resolver.cached(target) or fwd.resolver.peek(target)
    active, up, down = rs.live()
    c = rs.counters
    udp = None
    if rs.udp is not None:
        udp = UdpStatus(rs.udp.timeout, active, c.accepted, rs.udp.dropped())
    prefix = "udp/" if rs.udp is not None else ""
    dial = rs.last_dial
    limit = fwd.config.udp_max_sessions if rs.udp is not None else fwd.config.max_conns
    bound = _sockname(rs.listeners[0].sock) if rs.listeners else None
    return RuleStatus(
        id=rs.id,
        proto=rs.rule.proto,
        rule=rs.rule.text,
        origin=rs.origin,
        listen=[prefix + lst.bound for lst in rs.listeners],
        target=str(target),
        resolved=[format_addr(a[1]) for a in resolved] if resolved else [],
        resolved_at=fwd.resolver.when(target),
        allow=[str(n) for n in rs.rule.allow] if rs.rule.allow is not None else None,
        closing=rs.closing,
        connections_active=active,
        connections_total=c.accepted,
        rejected=c.rejected,
        denied=c.denied,
        bytes_up=up,
        bytes_down=down,
        errors=dict(c.ended),
        udp=udp,
        max_connections=limit,
        last_dial=DialStatus(dial.ok, dial.at, dial.reason) if dial is not None else None,
        open_url=browser_url(rs.rule.proto, bound),
    )


def _sockname(sock: socket.socket) -> tuple[str, int] | None:
    try:
        name = sock.getsockname()
        return str(name[0]), int(name[1])
    except (OSError, TypeError, IndexError):
        return None  # closed while the rule stops


def snapshot(fwd: Forwarder, config: str | None) -> Status:
    return Status(
        started=fwd.started_at,
        uptime=round(time.time() - fwd.started_at, 3),
        engine=fwd.engine,
        config=config,
        rules=[rule_status(fwd, rs) for rs in fwd.table.rules],
        log_dropped=fwd.log.dropped,
    )


def open_flows(fwd: Forwarder) -> list[OpenFlow]:
    now = time.monotonic()
    out: list[OpenFlow] = []
    for rs in fwd.table.rules:
        for conn in rs.active:
            relay = conn.relay
            out.append(
                OpenFlow(
                    proto="tcp",
                    rule=rs.id,
                    client=format_addr(conn.client),
                    target=format_addr(conn.target),
                    up=relay.up if relay else 0,
                    down=relay.down if relay else 0,
                    age=round(now - conn.started, 3),
                    state="relaying" if relay else "connecting",
                    id=conn.id,
                )
            )
        if rs.udp is not None:
            for s in rs.udp.sessions.values():
                out.append(
                    OpenFlow(
                        proto="udp",
                        rule=rs.id,
                        client=format_addr(s.client),
                        target=s.target,
                        up=s.up,
                        down=s.down,
                        age=round(now - s.started, 3),
                        state="open",
                        idle=round(now - s.last, 3),
                    )
                )
    return out


def registration(fwd: Forwarder, api_url: str | None, token: str | None) -> Registration:
    """What this forwarder registers: its rules as bound now, and its API if any."""
    rules = tuple(
        RegisteredRule(
            rs.id, rs.rule.proto, rs.rule.text, str(rs.rule.target),
            tuple(b for b in (_sockname(lst.sock) for lst in rs.listeners) if b is not None),
        )
        for rs in fwd.table.rules
        if not rs.closing
    )  # fmt: skip
    return Registration(os.getpid(), fwd.started_at, rules, api_url, token)


class Registrar:
    """Keeps the registration as the rules are: rewritten after every change (reload, the
    API, auto-forward) in a worker thread, so that a slow disk never stalls the loop; one
    write at a time, the last state winning, and none left behind once it is closed."""

    def __init__(self, fwd: Forwarder, url: str | None, token: str | None) -> None:
        self.fwd, self.url, self.token = fwd, url, token
        self.dirty = False
        self.writing: asyncio.Task[None] | None = None
        self.closed = False

    def write_now(self) -> None:
        self._say(self._write(registration(self.fwd, self.url, self.token)))

    def changed(self) -> None:
        self.dirty = True
        if self.writing is None or self.writing.done():
            self.writing = asyncio.get_running_loop().create_task(self._rewrite())

    async def _rewrite(self) -> None:
        while self.dirty and not self.closed:
            self.dirty = False
            reg = registration(self.fwd, self.url, self.token)  # read on the loop's thread
            self._say(await asyncio.to_thread(self._write, reg))

    def _write(self, reg: Registration) -> OSError | WslnetError | None:
        try:
            path = register(reg)
        except (OSError, WslnetError) as exc:  # status will not find it; forwarding goes on
            return exc
        if self.closed:  # closed while this thread wrote: close() may have come first
            path.unlink(missing_ok=True)
        return None

    def _say(self, exc: OSError | WslnetError | None) -> None:
        """A failed write, logged on the loop's thread (the log's observers live there)."""
        if exc is not None:
            msg = getattr(exc, "message", None) or str(exc)
            self.fwd.log.limited("register-failed", "warning", "register-failed", msg=msg)

    def close(self) -> None:
        self.closed = True
        registration_path(os.getpid()).unlink(missing_ok=True)


@contextlib.contextmanager
def registered(fwd: Forwarder, api: ControlApi | None) -> Iterator[None]:
    """Registers the forwarder for `wslnet status` and the doctor while it runs, with its
    rules as they are (removed at exit)."""
    url = api.url if api is not None else None
    token = api.token if api is not None and api.generated else None
    registrar = Registrar(fwd, url, token)
    registrar.write_now()
    fwd.table.on_change = registrar.changed
    try:
        yield
    finally:
        fwd.table.on_change = _nothing
        registrar.close()


def _nothing() -> None:
    pass


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


_SERIES = (
    # One meaning per counter for TCP and UDP (core/stats.py): arrivals = admitted + refused.
    ("wslnet_connections_total", "counter", "Connections (TCP) or sessions (UDP) admitted."),
    ("wslnet_connections_active", "gauge", "Open connections or UDP sessions."),
    ("wslnet_bytes_total", "counter", "Bytes forwarded, by direction."),
    (
        "wslnet_errors_total",
        "counter",
        "Admitted connections or sessions that ended other than closed, idle-timeout or "
        "shutdown, by reason.",
    ),
    (
        "wslnet_rejected_total",
        "counter",
        "Connections or sessions refused, never admitted: not on --allow (or no address), "
        "over --max-conns/--udp-max-sessions, or a forwarding loop.",
    ),
    ("wslnet_udp_dropped_total", "counter", "UDP datagrams dropped: a send queue was full."),
    ("wslnet_log_dropped_total", "counter", "Log lines dropped: the log output did not keep up."),
)


def metrics(status: Status) -> str:
    """Prometheus text exposition format 0.0.4."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _SERIES}
    for r in status.rules:
        listen = _label(r.listen[0] if r.listen else "")
        base = f'rule="{r.id}",proto="{r.proto}",listen="{listen}",target="{_label(r.target)}"'
        samples["wslnet_connections_total"].append(f"{{{base}}} {r.connections_total}")
        samples["wslnet_connections_active"].append(f"{{{base}}} {r.connections_active}")
        samples["wslnet_bytes_total"].append(f'{{{base},direction="up"}} {r.bytes_up}')
        samples["wslnet_bytes_total"].append(f'{{{base},direction="down"}} {r.bytes_down}')
        for reason, n in sorted(r.errors.items()):
            samples["wslnet_errors_total"].append(f'{{{base},reason="{_label(reason)}"}} {n}')
        samples["wslnet_rejected_total"].append(f"{{{base}}} {r.rejected + r.denied}")
        if r.udp is not None:
            samples["wslnet_udp_dropped_total"].append(f"{{{base}}} {r.udp.udp_datagrams_dropped}")
    samples["wslnet_log_dropped_total"] = [f" {status.log_dropped}"]
    lines = []
    for name, kind, help_text in _SERIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines += [f"{name}{sample}" for sample in samples[name]]
    return "\n".join(lines) + "\n"


def render(doc: dict[str, Any], who: str = "") -> str:
    """`wslnet status` for people, from the /v1/status document."""
    lines = [f"wslnet forward{who}, up {doc['uptime']:.0f} s, engine {doc['engine']}"]
    for r in doc["rules"]:
        resolved = ",".join(r["resolved"]) or "-"
        lines.append(
            f"  #{r['id']} {r['proto']} {' '.join(r['listen'])} -> {r['target']} "
            f"({resolved}) active {r['connections_active']} total "
            f"{r['connections_total']} up {r['bytes_up']} down {r['bytes_down']}"
            + (f" dropped {r['udp_datagrams_dropped']}" if r.get("udp_datagrams_dropped") else "")
        )
    return "\n".join(lines)


def render_running(seen: list[Seen], folder: str) -> str:
    """Every running forwarder: its live status through its API, else what it registered."""
    if not seen:
        return f"no forwarder is running (each one registers in {folder} while it runs)"
    out = []
    for s in seen:
        who = f", pid {s.pid}" if s.pid is not None else ""
        if s.status is not None:
            out.append(render(s.status, f"{who}, API {s.api}"))
            continue
        api = f"API {s.api}: {s.error}" if s.api else "no --api"
        lines = [f"wslnet forward{who}, {api}"]
        for r in s.rules:
            listen = " ".join(format_hostport(h, p) for h, p in r.listen)
            lines.append(f"  #{r.id} {r.proto} {listen} -> {r.target}")
        out.append("\n".join(lines))
    return "\n".join(out)
