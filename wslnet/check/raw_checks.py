"""Packet-level checks: run with root or CAP_NET_RAW, else skipped with the reason.

scapy is imported inside the probes, so `wslnet check --no-raw` (and a check without
the rights) never loads it.
"""

from __future__ import annotations

import asyncio

from wslnet.check import verdicts
from wslnet.check.context import Context, host_path
from wslnet.check.model import Finding, check, skip


def needs_raw(ctx: Context) -> str | None:
    if not ctx.options.raw:
        return "packet-level probes are off (--no-raw)"
    if ctx.env.kind == "windows":
        return "packet-level probes run in WSL or Linux, not on Windows"
    if not ctx.env.raw_probes:
        return "run with sudo for packet-level probes (they need root or CAP_NET_RAW)"
    return None


@check("raw.syn", "SYN probe of Windows ports (--host-port)", applies=needs_raw, timeout=5.0)
async def raw_syn(ctx: Context) -> list[Finding]:
    host = ctx.host().address
    if not ctx.options.host_ports or host is None:
        return [skip("No --host-port (or no host address) to probe")]
    from wslnet.probe import connect, raw

    timeout = ctx.options.probe_timeout
    ports = ctx.options.host_ports
    syns = await asyncio.gather(*(asyncio.to_thread(raw.syn, host, p, timeout) for p in ports))
    conns = await asyncio.gather(*(connect.tcp(host, p, timeout) for p in ports))
    path = host_path(host)
    findings = []
    for s, c in zip(syns, conns, strict=True):
        what = s.state + (f" ({s.icmp})" if s.icmp else "")
        rtt = f", {s.rtt * 1000:.1f} ms" if s.rtt is not None else ""
        title = f"SYN to {host}:{s.port}: {what}{rtt}; connect: {c.state}"
        ev: dict[str, object] = {"syn": s.as_json(), "connect": c.__dict__}
        detail = f"the path answered 'unreachable ({s.icmp})'"
        findings.append(verdicts.windows_port(s.state, title, host, s.port, ev, detail, path))
    return findings


@check("raw.host", "Is the Windows host up (ARP, ICMP echo)?", applies=needs_raw, timeout=4.0)
async def raw_host(ctx: Context) -> list[Finding]:
    address = ctx.host().address
    if address is None or address.startswith("127."):
        return [skip("The host is localhost here: nothing to ask at layer 2")]
    from wslnet.probe import raw

    timeout = ctx.options.probe_timeout
    arp, echo = await asyncio.gather(
        asyncio.to_thread(raw.arp, address, timeout),
        asyncio.to_thread(raw.echo, address, timeout),
    )
    return [verdicts.host_layer2(address, arp, echo)]


@check("raw.mtu", "Path MTU to the host (and --target)", applies=needs_raw, timeout=6.0)
async def raw_mtu(ctx: Context) -> list[Finding]:
    host = ctx.host().address
    dests = [d for d in [host, *ctx.options.targets] if d and not d.startswith("127.")]
    if not dests:
        return [skip("No destination off this machine to measure")]
    from wslnet.probe import raw

    results = await asyncio.gather(*(asyncio.to_thread(raw.path_mtu, d) for d in dests))
    return [verdicts.path_mtu(r, host_path(r.host)) for r in results]
