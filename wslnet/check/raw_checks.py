"""Packet-level checks: run with root or CAP_NET_RAW, else skipped with the reason.

scapy is imported inside the probes, so `wslnet check --no-raw` (and a check without
the rights) never loads it.
"""

from __future__ import annotations

import asyncio

from wslnet.check.checks import firewall_fix, port_finding
from wslnet.check.context import Context
from wslnet.check.model import Finding, Fix, check


def needs_raw(ctx: Context) -> str | None:
    if not ctx.options.raw:
        return "packet-level probes are off (--no-raw)"
    if not ctx.env.raw_probes:
        return "run with sudo for packet-level probes (they need root or CAP_NET_RAW)"
    return None


@check("raw.syn", "SYN probe of Windows ports (--host-port)", applies=needs_raw, timeout=5.0)
async def raw_syn(ctx: Context) -> list[Finding]:
    host = ctx.host().address
    if not ctx.options.host_ports or host is None:
        return [Finding("raw.syn", "skip", "No --host-port (or no host address) to probe")]
    from wslnet.probe import connect, raw

    timeout = ctx.options.probe_timeout
    syns = await asyncio.gather(
        *(asyncio.to_thread(raw.syn, host, p, timeout) for p in ctx.options.host_ports)
    )
    conns = await asyncio.gather(*(connect.tcp(host, p, timeout) for p in ctx.options.host_ports))
    findings = []
    for s, c in zip(syns, conns, strict=True):
        what = s.state + (f" ({s.icmp})" if s.icmp else "")
        rtt = f", {s.rtt * 1000:.1f} ms" if s.rtt is not None else ""
        title = f"SYN to {host}:{s.port}: {what}{rtt}; connect: {c.state}"
        ev: dict[str, object] = {"syn": s.as_json(), "connect": c.__dict__}
        detail = f"the path answered 'unreachable ({s.icmp})'"
        findings.append(port_finding("raw.syn", s.state, title, host, s.port, ev, detail))
    return findings


@check("raw.host", "Is the Windows host up (ARP, ICMP echo)?", applies=needs_raw, timeout=4.0)
async def raw_host(ctx: Context) -> list[Finding]:
    host = ctx.host()
    if host.address is None or host.address.startswith("127."):
        return [
            Finding("raw.host", "skip", "The host is localhost here: nothing to ask at layer 2")
        ]
    from wslnet.probe import raw

    timeout = ctx.options.probe_timeout
    a, e = await asyncio.gather(
        asyncio.to_thread(raw.arp, host.address, timeout),
        asyncio.to_thread(raw.echo, host.address, timeout),
    )
    ev: dict[str, object] = {"arp": a.as_json(), "echo": e.__dict__}
    if a.mac is None:
        return [
            Finding(
                "raw.host",
                "fail",
                f"{host.address} does not answer ARP on {a.interface}",
                "the Windows side of the WSL switch is gone (often after sleep or a "
                "network change)",
                Fix("restart WSL from Windows", ["wsl --shutdown"]),
                ev,
            )
        ]
    if not e.answered:
        return [
            Finding(
                "raw.host",
                "warn",
                f"{host.address} is up (ARP from {a.mac}) but drops ICMP echo",
                "host up, firewall dropping: the Windows firewall filters what WSL sends",
                firewall_fix(),
                ev,
            )
        ]
    rtt = f"{e.rtt * 1000:.1f} ms" if e.rtt is not None else "?"
    return [
        Finding(
            "raw.host", "ok", f"{host.address} is up: ARP from {a.mac}, echo in {rtt}", evidence=ev
        )
    ]


@check("raw.mtu", "Path MTU to the host (and --target)", applies=needs_raw, timeout=6.0)
async def raw_mtu(ctx: Context) -> list[Finding]:
    host = ctx.host().address
    dests = [d for d in [host, *ctx.options.targets] if d and not d.startswith("127.")]
    if not dests:
        return [Finding("raw.mtu", "skip", "No destination off this machine to measure")]
    from wslnet.probe import raw

    results = await asyncio.gather(*(asyncio.to_thread(raw.path_mtu, d) for d in dests))
    findings = []
    for r in results:
        ev = r.as_json()
        if r.path_mtu is None:
            findings.append(
                Finding(
                    "raw.mtu",
                    "skip",
                    f"Path MTU to {r.host}: no ICMP echo answer",
                    "; ".join(r.notes),
                    evidence=ev,
                )
            )
        elif r.path_mtu >= r.interface_mtu:
            findings.append(
                Finding(
                    "raw.mtu",
                    "ok",
                    f"Path MTU to {r.host} is {r.path_mtu}, as {r.interface}'s",
                    evidence=ev,
                )
            )
        else:
            n = r.path_mtu
            findings.append(
                Finding(
                    "raw.mtu",
                    "fail",
                    f"Path MTU to {r.host} is {n}, "
                    f"below {r.interface}'s {r.interface_mtu} ({r.method})",
                    "large packets vanish on this path (a VPN?): ssh works, git clone and big "
                    "downloads stall",
                    Fix(
                        f"lower the MTU; to keep it, add `[boot]` `command = ip link set dev "
                        f"{r.interface} mtu {n}` to /etc/wsl.conf",
                        [f"sudo ip link set dev {r.interface} mtu {n}"],
                    ),
                    ev,
                )
            )
    return findings
