"""Checks of the Windows side: natively on Windows, and from inside WSL through interop
(netsh.exe, netstat.exe, tasklist.exe, powershell.exe). All gather one WindowsFacts
(windows_facts.py) and hand it to the pure verdicts (verdicts/windows.py, firewall.py)."""

from __future__ import annotations

from collections.abc import Callable

from wslnet import system
from wslnet.check import verdicts
from wslnet.check.context import Context
from wslnet.check.model import CheckFunc, Finding, check, ok, skip
from wslnet.check.windows_facts import WINDOWS_BUDGET


def needs_windows(ctx: Context) -> str | None:
    """Windows itself, or WSL with interop on (skipped, with the reason, otherwise)."""
    if ctx.env.kind == "windows":
        return None
    return system.interop_status(ctx.env.in_wsl)


def windows_check(id: str, title: str) -> Callable[[CheckFunc], CheckFunc]:
    """A check of the Windows side that waits for PowerShell: the Windows budget."""
    return check(id, title, applies=needs_windows, timeout=WINDOWS_BUDGET, budget=WINDOWS_BUDGET)


@check("windows.excluded-ports", "Ports Windows reserves (Hyper-V, WinNAT)", applies=needs_windows)
async def excluded_ports(ctx: Context) -> list[Finding]:
    found, _ = await ctx.listeners()
    wanted = {(x.proto, x.port) for x in found if x.windows_localhost != "n/a"}
    wanted |= set(await ctx.forward_ports())  # where a configured forwarder will listen
    ports = sorted(wanted)
    if ctx.options.port is not None:
        ports = [(p, n) for p, n in ports if n == ctx.options.port] or [("tcp", ctx.options.port)]
    facts = await ctx.windows()
    return verdicts.excluded_ports(ports, facts)


@windows_check(
    "windows.portproxy", "netsh portproxy rules (stale ones, conflicts, the IP Helper service)"
)
async def portproxy(ctx: Context) -> list[Finding]:
    facts = await ctx.windows()
    addresses = await ctx.vm_addresses()
    vm = addresses[0] if addresses else None
    ps = await facts.powershell() if facts.portproxy else None  # iphlpsvc, only if it matters
    return verdicts.portproxy(facts, vm, set(await ctx.relay_ports()), ps)


@check("windows.port-owner", "Who holds each WSL port on Windows", applies=needs_windows)
async def port_owner(ctx: Context) -> list[Finding]:
    ports = await ctx.relay_ports()
    if not ports:
        return [skip("No WSL listener for WSL's relay to forward")]
    return verdicts.port_owners(ports, await ctx.windows())


@windows_check("windows.reach", "Windows localhost reaches each WSL port")
async def windows_reach(ctx: Context) -> list[Finding]:
    ports = await ctx.relay_ports()
    if not ports:
        return [skip("No WSL listener for WSL's relay to forward")]
    facts = await ctx.windows()
    return verdicts.windows_reach(ports, facts, await facts.powershell())


@windows_check("windows.firewall", "Windows' and the Hyper-V firewall for WSL")
async def firewall(ctx: Context) -> list[Finding]:
    ps = await (await ctx.windows()).powershell()
    mode = await _mode(ctx)
    lan = [(x.proto, x.port) for x in await ctx.forward_listens() if not x.loopback]
    return verdicts.windows_firewall(mode, ps, lan)


async def _mode(ctx: Context) -> str | None:
    """The networking mode: this VM's, or on Windows the default distribution's."""
    if ctx.env.kind == "windows":
        return (await ctx.wsl()).mode
    return ctx.env.networking_mode


def on_windows(ctx: Context) -> str | None:
    return None if ctx.env.kind == "windows" else f"runs on Windows (this is {ctx.env.kind})"


@check("windows.wsl", "WSL as Windows sees it: version, distributions, mode", applies=on_windows)
async def wsl_status(ctx: Context) -> list[Finding]:
    _, conf = await ctx.wslconfig()
    return verdicts.wsl_status(await ctx.wsl(), conf, ctx.options.boot)


@check("wsl.listeners", "Can Windows reach each WSL listener?", applies=on_windows)
async def wsl_listeners(ctx: Context) -> list[Finding]:
    wsl = await ctx.wsl()
    if not wsl.read_inside:
        name = wsl.default.name if wsl.default else "the default distribution"
        return [skip(f"{name} is not running: its listeners are not read (--boot starts it)")]
    found, problems = await ctx.listeners()
    return verdicts.listeners(found, problems, ctx.options.port, wsl.mode or "nat")


@check("windows.docker", "Where Docker publishes ports", applies=needs_windows)
async def docker(ctx: Context) -> list[Finding]:
    import asyncio

    if system.which("docker.exe") is None:
        return [skip("Docker is not installed on Windows (no docker.exe)")]
    code, out, _ = await asyncio.to_thread(
        system.windows_exe, "docker.exe", ["info", "--format", "{{.OSType}}|{{.OperatingSystem}}"]
    )
    return verdicts.docker(code, out, system.which("docker-machine.exe") is not None)


@windows_check("windows.vpn", "A VPN adapter on Windows (NAT mode)")
async def vpn(ctx: Context) -> list[Finding]:
    import asyncio

    from wslnet.facts import resolv
    from wslnet.probe import dns

    ps = await (await ctx.windows()).powershell()
    mode = await _mode(ctx)
    answers: bool | None = None
    text = system.read_text("/etc/resolv.conf") if ctx.env.kind != "windows" else None
    servers = resolv.parse(text).nameservers if text else []
    if mode == "nat" and servers and any(a.vpn for a in ps.adapters):
        results = await asyncio.gather(*(dns.query(s, timeout=1.0) for s in servers))
        answers = any(r.alive for r in results)
    return verdicts.vpn(ps, mode, answers)


@check("windows.proxy", "A proxy setting that points at a Windows proxy on loopback",
       applies=needs_windows)  # fmt: skip
async def windows_proxy(ctx: Context) -> list[Finding]:
    from wslnet.facts import proxy

    if ctx.env.kind == "windows":
        return [skip("Inside WSL only: its proxy settings against the Windows proxy")]
    found = [p for n in proxy.ENV_NAMES if (p := proxy.parse_url(n, system.env(n) or ""))]
    if not found:
        return [skip("No proxy set (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY)")]
    facts = await ctx.windows()
    bad = verdicts.unreadable("who listens on which port", facts.outputs["netstat"])
    if bad is not None:
        return [bad]
    host = ctx.host().address
    mode = ctx.env.networking_mode
    findings = []
    for p in found:
        bound = [a for _, _, a in facts.owners(p.port)]
        hit = verdicts.proxy_on_windows_loopback(p, host, bound, mode)
        if hit is not None:
            findings.append(hit)
    return findings or [ok("No proxy setting points at a Windows proxy bound to loopback")]
