"""What a running forwarder reports: rules, targets, connections, sessions, counters."""

from __future__ import annotations

import time
from typing import Any

from wslnet.forward.rules import format_addr
from wslnet.forward.server import Forwarder, RuleState


def rule_status(fwd: Forwarder, rs: RuleState) -> dict[str, Any]:
    target = rs.rule.target
    resolved = fwd.resolver.cached(target) or fwd.resolver.peek(target)
    at = fwd.resolver.when(target)
    up, down = rs.up, rs.down
    for conn in rs.active:
        if conn.relay is not None:
            up += conn.relay.up
            down += conn.relay.down
    udp = rs.udp
    status: dict[str, Any] = {
        "id": rs.id,
        "proto": rs.rule.proto,
        "rule": rs.rule.text,
        "origin": rs.origin,
        "listen": [("udp/" if udp else "") + lst.bound for lst in rs.listeners],
        "target": str(target),
        "resolved": [format_addr(a[1]) for a in resolved] if resolved else [],
        "resolved_at": at,
        "allow": list(rs.rule.allow) if rs.rule.allow is not None else None,
        "closing": rs.closing,
        "connections_active": len(rs.active),
        "connections_total": rs.accepted,
        "rejected": rs.rejected,
        "denied": rs.denied,
        "bytes_up": up,
        "bytes_down": down,
        "errors": dict(rs.ended),
    }
    if udp is not None:
        status.update(
            udp_timeout=udp.timeout,
            udp_sessions_active=len(udp.sessions),
            udp_sessions_total=udp.total,
            connections_total=udp.total,
            denied=udp.refused,
            bytes_up=udp.up + sum(s.up for s in udp.sessions.values()),
            bytes_down=udp.down + sum(s.down for s in udp.sessions.values()),
            errors=dict(udp.errors),
        )
    return status


def status(fwd: Forwarder) -> dict[str, Any]:
    return {
        "version": 1,
        "started": fwd.started_at,
        "uptime": round(time.time() - fwd.started_at, 3),
        "engine": fwd.engine,
        "config": str(fwd.config_path) if fwd.config_path else None,
        "rules": [rule_status(fwd, rs) for rs in fwd.rules],
    }


def connections(fwd: Forwarder) -> list[dict[str, Any]]:
    now = time.monotonic()
    out: list[dict[str, Any]] = []
    for rs in fwd.rules:
        for conn in rs.active:
            relay = conn.relay
            out.append(
                {
                    "id": conn.id,
                    "proto": "tcp",
                    "rule": rs.id,
                    "client": format_addr(conn.client),
                    "target": format_addr(conn.target),
                    "up": relay.up if relay else 0,
                    "down": relay.down if relay else 0,
                    "age": round(now - conn.started, 3),
                    "state": "relaying" if relay else "connecting",
                }
            )
        if rs.udp is not None:
            for s in rs.udp.sessions.values():
                out.append(
                    {
                        "proto": "udp",
                        "rule": rs.id,
                        "client": format_addr(s.client),
                        "target": s.target,
                        "up": s.up,
                        "down": s.down,
                        "age": round(now - s.started, 3),
                        "idle": round(now - s.last, 3),
                    }
                )
    return out


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def metrics(fwd: Forwarder) -> str:
    """Prometheus text exposition format 0.0.4."""
    series: dict[str, tuple[str, str, list[str]]] = {
        "wslnet_connections_total": (
            "counter",
            "Connections (TCP) or sessions (UDP) accepted.",
            [],
        ),
        "wslnet_connections_active": ("gauge", "Open connections or UDP sessions.", []),
        "wslnet_bytes_total": ("counter", "Bytes forwarded, by direction.", []),
        "wslnet_errors_total": ("counter", "Connections that ended badly, by reason.", []),
        "wslnet_rejected_total": ("counter", "Refused by max-conns or the allow list.", []),
    }
    for rs in fwd.rules:
        st = rule_status(fwd, rs)
        listen = _label(st["listen"][0] if st["listen"] else "")
        base = (
            f'rule="{rs.id}",proto="{rs.rule.proto}",listen="{listen}",'
            f'target="{_label(st["target"])}"'
        )
        active = st.get("udp_sessions_active", st["connections_active"])
        series["wslnet_connections_total"][2].append(f"{{{base}}} {st['connections_total']}")
        series["wslnet_connections_active"][2].append(f"{{{base}}} {active}")
        series["wslnet_bytes_total"][2].append(f'{{{base},direction="up"}} {st["bytes_up"]}')
        series["wslnet_bytes_total"][2].append(f'{{{base},direction="down"}} {st["bytes_down"]}')
        for reason, n in sorted(st["errors"].items()):
            series["wslnet_errors_total"][2].append(f'{{{base},reason="{_label(reason)}"}} {n}')
        series["wslnet_rejected_total"][2].append(f"{{{base}}} {st['rejected'] + st['denied']}")
    lines = []
    for name, (kind, help_text, samples) in series.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines += [f"{name}{sample}" for sample in samples]
    return "\n".join(lines) + "\n"
