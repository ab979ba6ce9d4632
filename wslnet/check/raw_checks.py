"""Packet-level checks: run with root or CAP_NET_RAW, else skipped with the reason.

scapy is imported inside the probes, so `wslnet check --no-raw` (and a check without
the rights) never loads it. The probes run in daemon threads: one that hangs can delay
no check past the run's budget, nor wslnet's exit. The host's ARP answer is asked once,
first: scapy resolves a MAC address for every packet it sends, with seconds of retries,
so a host that does not answer ARP is reported as such instead of timing out three ways.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from wslnet.check import verdicts
from wslnet.check.context import Context, host_path
from wslnet.check.model import Finding, check, fail, skip

T = TypeVar("T")
ARP_TIMEOUT = 0.5  # a neighbour on the WSL switch answers in well under a millisecond


def needs_raw(ctx: Context) -> str | None:
    if not ctx.options.raw:
        return "packet-level probes are off (--no-raw)"
    if ctx.env.kind == "windows":
        return "packet-level probes run in WSL or Linux, not on Windows"
    if not ctx.env.raw_probes:
        return "run with sudo for packet-level probes (they need root or CAP_NET_RAW)"
    return None


async def in_thread(func: Callable[..., T], *args: object) -> T:
    """func(*args) in a daemon thread (asyncio.to_thread's pool would hold up the exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = func(*args), None
        except BaseException as exc:
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the run is over: nobody waits for this answer any more

    threading.Thread(target=work, name="wslnet-probe", daemon=True).start()
    return await future


async def host_arp(ctx: Context, address: str) -> object:
    """The ARP answer of the host, asked once per run and shared by the raw checks."""
    from wslnet.probe import raw

    async with ctx.lock("arp"):
        if ctx.arp is None:
            ctx.arp = await in_thread(raw.arp, address, ARP_TIMEOUT)
    return ctx.arp


def _gone(address: str, arp: object) -> str | None:
    from wslnet.probe.raw import ArpResult

    if isinstance(arp, ArpResult) and arp.mac is None:
        return f"{address} does not answer ARP on {arp.interface} (see raw.host)"
    return None


@check("raw.syn", "SYN probe of Windows ports (--host-port)", applies=needs_raw, timeout=5.0)
async def raw_syn(ctx: Context) -> list[Finding]:
    host = ctx.host().address
    if not ctx.options.host_ports or host is None:
        return [skip("No --host-port (or no host address) to probe")]
    from wslnet.probe import connect, raw

    gone = _gone(host, await host_arp(ctx, host)) if not host.startswith("127.") else None
    if gone is not None:
        return [skip(f"SYN probes of {host}: unknown, because {gone}")]
    timeout = ctx.options.probe_timeout
    ports = ctx.options.host_ports
    syns, conns = await asyncio.gather(
        asyncio.gather(*(in_thread(raw.syn, host, p, timeout) for p in ports)),
        asyncio.gather(*(connect.tcp(host, p, timeout) for p in ports)),
    )
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

    arp = await host_arp(ctx, address)
    assert isinstance(arp, raw.ArpResult)
    if arp.mac is None:
        return [verdicts.host_layer2(address, arp, raw.EchoResult(address, False, None))]
    echo = await in_thread(raw.echo, address, ctx.options.probe_timeout)
    return [verdicts.host_layer2(address, arp, echo)]


@check("raw.mtu", "Path MTU to the host (and --target)", applies=needs_raw, timeout=6.0)
async def raw_mtu(ctx: Context) -> list[Finding]:
    host = ctx.host().address
    dests = [d for d in [host, *ctx.options.targets] if d and not d.startswith("127.")]
    if not dests:
        return [skip("No destination off this machine to measure")]
    from wslnet.probe import raw

    findings = []
    if host in dests:
        gone = _gone(host, await host_arp(ctx, host))
        if gone is not None:
            dests.remove(host)
            findings.append(skip(f"Path MTU to {host}: unknown, because {gone}"))
    results = await asyncio.gather(*(in_thread(raw.path_mtu, d) for d in dests))
    findings += [verdicts.path_mtu(r, host_path(r.host)) for r in results]
    return findings or [fail("No path MTU measured")]
