"""Checks of the Windows side: natively on Windows, and from inside WSL through interop
(netsh.exe, netstat.exe, tasklist.exe, powershell.exe). All gather one WindowsFacts
(windows_facts.py) and hand it to the pure verdicts (verdicts/windows.py, firewall.py)."""

from __future__ import annotations

from wslnet import system
from wslnet.check import verdicts
from wslnet.check.context import Context
from wslnet.check.model import Finding, check, skip


def needs_windows(ctx: Context) -> str | None:
    """Windows itself, or WSL with interop on (skipped, with the reason, otherwise)."""
    if ctx.env.kind == "windows":
        return None
    return system.interop_status(ctx.env.in_wsl)


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


@check("windows.portproxy", "netsh portproxy rules (stale ones, conflicts)", applies=needs_windows)
async def portproxy(ctx: Context) -> list[Finding]:
    facts = await ctx.windows()
    addresses = await ctx.vm_addresses()
    vm = addresses[0] if addresses else None
    return verdicts.portproxy(facts, vm, set(await ctx.relay_ports()))


@check("windows.port-owner", "Who holds each WSL port on Windows", applies=needs_windows)
async def port_owner(ctx: Context) -> list[Finding]:
    ports = await ctx.relay_ports()
    if not ports:
        return [skip("No WSL listener for WSL's relay to forward")]
    return verdicts.port_owners(ports, await ctx.windows())


@check("windows.reach", "Windows localhost reaches each WSL port", applies=needs_windows)
async def windows_reach(ctx: Context) -> list[Finding]:
    ports = await ctx.relay_ports()
    if not ports:
        return [skip("No WSL listener for WSL's relay to forward")]
    return verdicts.windows_reach(ports, await ctx.windows())


@check("windows.firewall", "Windows' and the Hyper-V firewall for WSL", applies=needs_windows)
async def firewall(ctx: Context) -> list[Finding]:
    facts = await ctx.windows()
    mode = ctx.env.networking_mode
    if ctx.env.kind == "windows":
        mode = (await ctx.wsl()).mode
    return verdicts.windows_firewall(mode, facts)


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
