"""The checks. Each declares itself with @check and returns findings; none prints."""

from __future__ import annotations

from wslnet import system
from wslnet.check.context import Context
from wslnet.check.model import Finding, Fix, Status, check
from wslnet.facts import resolv
from wslnet.facts.wslconfig import WslConfig
from wslnet.listeners import collect
from wslnet.probe import connect

FIREWALL_RULE = (
    'New-NetFirewallRule -DisplayName "WSL" -Direction Inbound '
    '-InterfaceAlias "vEthernet (WSL)" -Action Allow'
)


def firewall_fix() -> Fix:
    """The fix for traffic from WSL that the Windows firewall drops (section 7)."""
    return Fix(
        "allow WSL through the Windows firewall (PowerShell as administrator; the adapter "
        "may be hidden: Get-NetAdapter -IncludeHidden)",
        [FIREWALL_RULE],
    )


def needs_wsl(ctx: Context) -> str | None:
    return None if ctx.env.in_wsl else f"not running in WSL (this is {ctx.env.kind})"


def needs_wsl2(ctx: Context) -> str | None:
    if ctx.env.networking_mode in (None, "wsl1"):
        return f"applies to WSL2 only (this is {ctx.env.kind})"
    return None


@check("environment.kind", "Where wslnet runs")
async def environment(ctx: Context) -> list[Finding]:
    env = ctx.env
    what = {
        "wsl2": "WSL2",
        "wsl1": "WSL1",
        "container": f"a {env.container} container",
        "linux": "Linux, not WSL",
        "windows": "Windows",
    }[env.kind]
    mode = f", {env.networking_mode} networking" if env.networking_mode else ""
    detail = f"kernel {env.kernel}" + (f"; mode from {env.mode_source}" if env.mode_source else "")
    findings = [
        Finding(
            "environment.kind",
            "info",
            f"Running in {what}{mode}",
            detail,
            evidence={"evidence": env.evidence, "distro": env.distro},
        )
    ]
    if env.kind == "container":
        findings.append(
            Finding(
                "environment.kind",
                "info",
                "The listeners shown are the container's, not the WSL VM's",
                "publish ports (docker run -p) or run wslnet in the WSL distro itself",
            )
        )
    return findings


@check("config.wslconfig", "%UserProfile%\\.wslconfig as WSL reads it", applies=needs_wsl)
async def wslconfig_file(ctx: Context) -> list[Finding]:
    path, conf = await ctx.wslconfig()
    if conf is None:
        where = path or "%UserProfile%\\.wslconfig (wslvar/cmd.exe could not locate it)"
        return [Finding("config.wslconfig", "info", "No .wslconfig read", f"looked for {where}")]
    if not conf.problems:
        return [
            Finding(
                "config.wslconfig",
                "ok",
                f"{path}: WSL reads every line",
                evidence={"settings": {e.key: e.value for e in conf.entries.values()}},
            )
        ]
    return _line_problems("config.wslconfig", str(path), conf)


def _line_problems(check_id: str, path: str, conf: WslConfig) -> list[Finding]:
    """One warning per line WSL will skip or misread; the file applies after a restart."""
    fix = Fix(f"edit {path}, then run `wsl --shutdown` from Windows")
    return [
        Finding(
            check_id,
            "warn",
            f"{path} line {p.line}: WSL will not use it as written",
            p.why,
            fix,
            {"line": p.text},
        )
        for p in conf.problems
    ]


@check("config.wslconf", "/etc/wsl.conf as WSL reads it", applies=needs_wsl)
async def wslconf_file(ctx: Context) -> list[Finding]:
    conf = ctx.wslconf()
    if conf is None:
        return [Finding("config.wslconf", "info", "No /etc/wsl.conf: WSL's defaults apply")]
    findings = _line_problems("config.wslconf", "/etc/wsl.conf", conf)
    if conf.flag("network.generateResolvConf") is False:
        findings.append(
            Finding(
                "config.wslconf",
                "info",
                "generateResolvConf=false: /etc/resolv.conf is yours to keep working",
            )
        )
    return findings or [Finding("config.wslconf", "ok", "/etc/wsl.conf: WSL reads every line")]


@check("config.mode", "Configured settings against the live networking mode", applies=needs_wsl2)
async def config_mode(ctx: Context) -> list[Finding]:
    _, conf = await ctx.wslconfig()
    live = ctx.env.networking_mode
    if conf is None:
        return [Finding("config.mode", "skip", "No .wslconfig to compare with the live mode")]
    findings: list[Finding] = []
    wanted = conf.get("wsl2.networkingMode") or conf.get("experimental.networkingMode") or "nat"
    if wanted.lower() != live:
        findings.append(
            Finding(
                "config.mode",
                "warn",
                f".wslconfig asks for {wanted} networking but {live} is running",
                "WSL falls back to NAT when mirrored mode's requirements are not met (Windows 11 "
                "22H2+, WSL 2.0+), or the file changed since the VM started",
                Fix("restart WSL so the file applies", ["wsl --shutdown"]),
            )
        )
    if live == "mirrored":
        for key in ("wsl2.localhostForwarding", "wsl2.dnsProxy"):
            if conf.get(key) is not None:
                findings.append(
                    Finding(
                        "config.mode", "info", f"{key.split('.')[1]} has no effect in mirrored mode"
                    )
                )
    if live == "nat":
        for key in ("experimental.hostAddressLoopback", "experimental.ignoredPorts"):
            if conf.get(key) is not None:
                findings.append(
                    Finding("config.mode", "info", f"{key.split('.')[1]} has no effect in NAT mode")
                )
        if conf.flag("wsl2.localhostForwarding") is False:
            findings.append(
                Finding(
                    "config.mode",
                    "warn",
                    "localhostForwarding=false: Windows cannot reach WSL on localhost",
                    "",
                    Fix("remove the line and run `wsl --shutdown`, or forward ports with wslnet"),
                )
            )
    return findings or [Finding("config.mode", "ok", f".wslconfig matches the live {live} mode")]


@check("listeners.bind-address", "Can Windows reach each listening socket?")
async def listeners(ctx: Context) -> list[Finding]:
    _, conf = await ctx.wslconfig() if ctx.env.in_wsl else (None, None)
    forwarding = not (conf is not None and conf.flag("wsl2.localhostForwarding") is False)
    mode = ctx.env.networking_mode if ctx.env.in_wsl else None
    found, problems = collect(mode, forwarding, ctx.env.vm_addresses)
    port = ctx.options.port
    if port is not None:
        found = [x for x in found if x.port == port]
        if not found:
            return [
                Finding(
                    "listeners.bind-address",
                    "fail",
                    f"Nothing listens on port {port}",
                    "start the service, or check the port it really uses (ss -ltnup)",
                )
            ]
    findings = []
    for x in found:
        where = (
            f"{x.proto} {x.address}:{x.port}"
            if ":" not in x.address
            else (f"{x.proto} [{x.address}]:{x.port}")
        )
        who = f" ({x.process}, pid {x.pid})" if x.process else ""
        status: Status = "ok" if x.windows_localhost == "yes" else "warn"
        if mode is None:
            status = "info"
        title = f"{where}{who}: Windows localhost {x.windows_localhost}"
        fix = Fix(x.fix, [c for c in [_command(x.fix)] if c]) if x.fix else None
        findings.append(
            Finding(
                "listeners.bind-address",
                status,
                title,
                x.reason,
                fix,
                x.as_json(),
            )
        )
    for p in problems:
        findings.append(
            Finding("listeners.bind-address", "warn", "A /proc/net line was unreadable", str(p))
        )
    if not findings:
        findings.append(Finding("listeners.bind-address", "info", "No listening sockets"))
    return findings


def _command(fix: str) -> str | None:
    marker = "on Windows: "
    return fix.split(marker, 1)[1] if marker in fix else None


@check("host.address", "The Windows host's address from here", applies=needs_wsl)
async def host_address(ctx: Context) -> list[Finding]:
    host = ctx.host()
    ev: dict[str, object] = {"candidates": [c.__dict__ for c in host.candidates]}
    if host.address is None:
        return [
            Finding(
                "host.address",
                "fail",
                "No address for the Windows host",
                host.why_none,
                Fix("check `ip route`: WSL's eth0 should have a default route"),
                ev,
            )
        ]
    rejected = [c for c in host.candidates if not c.usable]
    detail = "; ".join(c.verdict for c in rejected)
    return [
        Finding(
            "host.address",
            "ok",
            f"Windows host is {host.address} ({host.source})",
            detail,
            None,
            ev,
        )
    ]


@check("host.reach", "Windows services reachable from here (--host-port)", timeout=5.0)
async def host_reach(ctx: Context) -> list[Finding]:
    if not ctx.options.host_ports:
        return [Finding("host.reach", "skip", "No --host-port given")]
    host = ctx.host().address
    if host is None:
        return [Finding("host.reach", "skip", "No host address to probe")]
    import asyncio

    results = await asyncio.gather(
        *(connect.tcp(host, p, ctx.options.probe_timeout) for p in ctx.options.host_ports)
    )
    findings = []
    for r in results:
        title = f"Windows {host}:{r.port} is {r.state} ({r.seconds * 1000:.0f} ms)"
        ev = {"host": host, "port": r.port, "state": r.state, "seconds": r.seconds}
        findings.append(port_finding("host.reach", r.state, title, host, r.port, ev, r.detail))
    return findings


def port_finding(
    check_id: str,
    state: str,
    title: str,
    host: str,
    port: int,
    evidence: dict[str, object],
    detail: str = "",
) -> Finding:
    """The verdict on a probe of a Windows port, shared by the connect and SYN probes."""
    if state == "open":
        return Finding(check_id, "ok", title, evidence=evidence)
    if state in ("refused", "closed"):
        return Finding(
            check_id,
            "fail",
            title,
            "nothing listens on that Windows port, or it listens on Windows' 127.0.0.1 only",
            Fix(
                f"bind the Windows service to 0.0.0.0 (or {host}); check with "
                f"`netstat -ano | findstr :{port}` on Windows"
            ),
            evidence,
        )
    if state == "filtered":
        return Finding(
            check_id,
            "fail",
            title,
            "no answer: the Windows firewall drops traffic from WSL on vEthernet (WSL)",
            firewall_fix(),
            evidence,
        )
    return Finding(
        check_id,
        "fail",
        title,
        detail,
        Fix(
            "a firewall rejects it (admin-prohibited) or there is no route: check the "
            "Windows firewall and `ip route`"
        ),
        evidence,
    )


@check("dns.resolver", "The resolver in /etc/resolv.conf answers", timeout=4.0)
async def dns_resolver(ctx: Context) -> list[Finding]:
    text = system.read_text("/etc/resolv.conf")
    if text is None:
        return [
            Finding(
                "dns.resolver",
                "fail",
                "/etc/resolv.conf is missing or unreadable",
                fix=Fix(
                    "let WSL generate it: remove generateResolvConf=false from "
                    "/etc/wsl.conf and run `wsl --shutdown`"
                ),
            )
        ]
    conf = resolv.parse(text)
    findings = [
        Finding("dns.resolver", "warn", "/etc/resolv.conf has a line resolvers ignore", str(p))
        for p in conf.problems
    ]
    if not conf.nameservers:
        return [*findings, Finding("dns.resolver", "fail", "No nameserver in /etc/resolv.conf")]
    from wslnet.probe import dns

    server = conf.nameservers[0]
    result = await dns.query(server, timeout=ctx.options.probe_timeout)
    ev: dict[str, object] = {
        "server": server,
        "responder": result.responder,
        "seconds": result.seconds,
        "generated_by_wsl": conf.generated_by_wsl,
    }
    if result.alive:
        findings.append(
            Finding(
                "dns.resolver",
                "ok",
                f"Resolver {server} answers ({result.detail}, {result.seconds * 1000:.0f} ms)",
                evidence=ev,
            )
        )
    else:
        findings.append(
            Finding(
                "dns.resolver",
                "fail",
                f"Resolver {server} does not answer: {result.detail}",
                "name lookups fail with 'Temporary failure in name resolution'",
                Fix(
                    "turn on dnsTunneling=true under [wsl2] in .wslconfig, `wsl --shutdown`; "
                    "behind a VPN, or if that fails: set generateResolvConf=false in /etc/wsl.conf "
                    "and write a working nameserver into /etc/resolv.conf"
                    if ctx.env.in_wsl
                    else "point /etc/resolv.conf at a resolver that answers from here"
                ),
                ev,
            )
        )
    return findings
