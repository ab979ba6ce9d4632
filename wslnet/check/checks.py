"""The checks: each declares itself with @check, gathers its facts and hands them to a
pure verdict (verdicts/). None prints; the runner stamps each finding with the id."""

from __future__ import annotations

import asyncio

from wslnet import system
from wslnet.check import verdicts
from wslnet.check.context import Context, host_path
from wslnet.check.model import Finding, check, skip
from wslnet.facts import proxy, resolv
from wslnet.probe import connect

DNS_TIMEOUT = 1.3  # a slow resolver (over 1 s) answers within it; the run stays under 2 s


def needs_wsl(ctx: Context) -> str | None:
    return None if ctx.env.in_wsl else f"not running in WSL (this is {ctx.env.kind})"


def not_windows(ctx: Context) -> str | None:
    """Linux's own files and sockets: on Windows the windows.* checks look instead."""
    return (
        "a Linux check: on Windows, see the windows.* checks" if ctx.env.kind == "windows" else None
    )


def needs_wsl2(ctx: Context) -> str | None:
    if ctx.env.networking_mode in (None, "wsl1"):
        return f"applies to WSL2 only (this is {ctx.env.kind})"
    return None


@check("environment.kind", "Where wslnet runs")
async def environment(ctx: Context) -> list[Finding]:
    return verdicts.environment(ctx.env)


def wsl_or_windows(ctx: Context) -> str | None:
    return None if ctx.env.kind == "windows" else needs_wsl(ctx)


@check("config.wslconfig", "%UserProfile%\\.wslconfig as WSL reads it", applies=wsl_or_windows)
async def wslconfig_file(ctx: Context) -> list[Finding]:
    path, conf = await ctx.wslconfig()
    return verdicts.wslconfig_file(path, conf, await ctx.wslconfig_file())


@check("config.wslconf", "/etc/wsl.conf as WSL reads it", applies=needs_wsl)
async def wslconf_file(ctx: Context) -> list[Finding]:
    return verdicts.wslconf_file(ctx.wslconf())


@check("config.mode", "Configured settings against the live networking mode", applies=needs_wsl2)
async def config_mode(ctx: Context) -> list[Finding]:
    _, conf = await ctx.wslconfig()
    return verdicts.config_mode(conf, ctx.env.networking_mode, await ctx.wslconfig_file())


@check("listeners.bind-address", "Can Windows reach each listening socket?", applies=not_windows)
async def listeners(ctx: Context) -> list[Finding]:
    found, problems = await ctx.listeners()
    mode = ctx.env.networking_mode if ctx.env.in_wsl else None
    return verdicts.listeners(found, problems, ctx.options.port, mode)


def needs_network(ctx: Context) -> str | None:
    """WSL with a network: with networking off by configuration there is no host to find."""
    if verdicts.networking_off(ctx.env) is not None:
        return "networking is off in this WSL VM (see environment.kind)"
    return needs_wsl(ctx)


@check("host.address", "The Windows host's address from here", applies=needs_network)
async def host_address(ctx: Context) -> list[Finding]:
    return verdicts.host_address(ctx.host())


@check("host.reach", "Windows services reachable from here (--host-port)", timeout=5.0)
async def host_reach(ctx: Context) -> list[Finding]:
    if not ctx.options.host_ports:
        return [skip("No --host-port given")]
    host = ctx.host().address
    if host is None:
        return [skip("No host address to probe")]
    timeout = ctx.options.probe_timeout
    results = await asyncio.gather(*(connect.tcp(host, p, timeout) for p in ctx.options.host_ports))
    path = host_path(host)  # after the probes: the neighbour table has tried the host
    findings = []
    for r in results:
        title = f"Windows {host}:{r.port} is {r.state} ({r.seconds * 1000:.0f} ms)"
        ev = {"host": host, "port": r.port, "state": r.state, "seconds": r.seconds}
        findings.append(verdicts.windows_port(r.state, title, host, r.port, ev, r.detail, path))
    return findings


def wsl_nameserver(ctx: Context) -> str | None:
    """The nameserver WSL writes into /etc/resolv.conf: its DNS tunnel when it runs, else
    the host in NAT mode (dnsProxy); None when unknown (mirrored without the tunnel copies
    Windows' servers) or when WSL does not write the file (generateResolvConf=false)."""
    wslconf = ctx.wslconf()
    if not ctx.env.in_wsl or (wslconf and wslconf.flag("network.generateResolvConf") is False):
        return None
    # The tunnel runs when its address is on lo (env.dns_tunnel also holds WSL's default
    # address, for telling the tunnel apart in resolv.conf, whether it runs or not).
    on_lo = [a for a in ctx.env.interfaces.get("lo", []) if a in ctx.env.dns_tunnel]
    if on_lo:
        return sorted(on_lo)[0]
    return ctx.host().address if ctx.env.networking_mode == "nat" else None


@check("dns.resolver", "The resolvers in /etc/resolv.conf answer", applies=not_windows, timeout=4.0)
async def dns_resolver(ctx: Context) -> list[Finding]:
    path = "/etc/resolv.conf"
    text = system.read_text(path)
    conf = resolv.parse(text) if text is not None else None
    link = system.link_target(path)
    generated = wsl_nameserver(ctx) if text is None and link is not None else None
    findings = verdicts.resolv_conf(text, conf, link, ctx.env.in_wsl, generated)
    if conf is None or not conf.nameservers:
        return findings
    from wslnet.probe import dns

    # Every nameserver, over UDP and TCP at once: slow (> 1 s) is a finding, not a timeout.
    timeout = max(ctx.options.probe_timeout, DNS_TIMEOUT)
    servers = conf.nameservers
    results = await asyncio.gather(
        *(dns.query(s, timeout=timeout) for s in servers),
        *(dns.query_tcp(s, timeout=timeout) for s in servers),
    )
    udp, tcp = results[: len(servers)], results[len(servers) :]
    for u, t in zip(udp, tcp, strict=True):
        findings.append(verdicts.resolver_answer(u, conf, ctx.env.in_wsl, t, ctx.env.dns_tunnel))
    return findings


@check("proxy.settings", "Proxy settings point at a proxy that answers", applies=not_windows)
async def proxy_settings(ctx: Context) -> list[Finding]:
    found = [p for n in proxy.ENV_NAMES if (p := proxy.parse_url(n, system.env(n) or ""))]
    for name in ["/etc/apt/apt.conf"] + [
        f"/etc/apt/apt.conf.d/{f}" for f in system.list_dir("/etc/apt/apt.conf.d")
    ]:
        text = system.read_text(name, limit=1 << 16)
        if text and "proxy" in text.lower():
            found += proxy.parse_apt(name, text)
    if not found:
        return [skip("No proxy set (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, apt)")]
    unique = {(p.host, p.port): p for p in found}
    timeout = ctx.options.probe_timeout
    probes = await asyncio.gather(*(connect.tcp(h, port, timeout) for h, port in unique))
    state = {(r.host, r.port): r.state for r in probes}
    mode = ctx.env.networking_mode if ctx.env.in_wsl else None
    return [verdicts.proxy(p, state[(p.host, p.port)], mode) for p in found]


def needs_mirrored(ctx: Context) -> str | None:
    if ctx.env.networking_mode != "mirrored":
        return f"applies to mirrored mode only (this is {ctx.env.networking_mode or ctx.env.kind})"
    return None


@check("network.mirrored", "Mirrored mode's routes and settings", applies=needs_mirrored)
async def mirrored_mode(ctx: Context) -> list[Finding]:
    has_default = any(r.is_default for r in system.routes())
    _, conf = await ctx.wslconfig()
    return verdicts.mirrored(has_default, conf)


@check("wsl.other-distros", "Listening sockets owned outside this distribution", applies=needs_wsl)
async def listener_owners(ctx: Context) -> list[Finding]:
    found, _ = await ctx.listeners()
    return verdicts.unowned(found, await asyncio.to_thread(system.processes_visible))


@check("network.ignored-ports", "Mirrored mode's ignoredPorts against WSL's listeners",
       applies=needs_mirrored)  # fmt: skip
async def ignored_ports(ctx: Context) -> list[Finding]:
    _, conf = await ctx.wslconfig()
    found, _ = await ctx.listeners()
    return verdicts.ignored_ports(conf, sorted({x.port for x in found}))
