"""The doctor's pure core: facts in, findings out. No I/O, no clock, no printing.

The check functions in checks.py and raw_checks.py gather the facts and call these; the
tests call these directly with recorded or constructed facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wslnet.check.model import Finding, Fix, Status, fail, finding, info, ok, skip, warn
from wslnet.facts.resolv import ResolvConf
from wslnet.facts.wslconfig import WslConfig
from wslnet.hostaddr import HostAddress
from wslnet.where import Environment

if TYPE_CHECKING:
    from wslnet.facts import Problem
    from wslnet.listeners import Listener
    from wslnet.probe.dns import DnsResult
    from wslnet.probe.raw import ArpResult, EchoResult, MtuResult

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


_KINDS = {
    "wsl2": "WSL2",
    "wsl1": "WSL1",
    "linux": "Linux, not WSL",
    "windows": "Windows",
}


def environment(env: Environment) -> list[Finding]:
    what = f"a {env.container} container" if env.kind == "container" else _KINDS[env.kind]
    mode = f", {env.networking_mode} networking" if env.networking_mode else ""
    detail = f"kernel {env.kernel}" + (f"; mode from {env.mode_source}" if env.mode_source else "")
    ev: dict[str, object] = {"evidence": env.evidence, "distro": env.distro}
    findings = [info(f"Running in {what}{mode}", detail=detail, evidence=ev)]
    if env.kind == "container":
        findings.append(
            info(
                "The listeners shown are the container's, not the WSL VM's",
                detail="publish ports (docker run -p) or run wslnet in the WSL distro itself",
            )
        )
    return findings


def line_problems(path: str, conf: WslConfig) -> list[Finding]:
    """One warning per line WSL will skip or misread; the file applies after a restart."""
    fix = Fix(f"edit {path}, then run `wsl --shutdown` from Windows")
    return [
        warn(
            f"{path} line {p.line}: WSL will not use it as written",
            detail=p.why,
            fix=fix,
            evidence={"line": p.text},
        )
        for p in conf.problems
    ]


def wslconfig_file(path: str | None, conf: WslConfig | None) -> list[Finding]:
    if conf is None:
        where = path or "%UserProfile%\\.wslconfig (wslvar/cmd.exe could not locate it)"
        return [info("No .wslconfig read", detail=f"looked for {where}")]
    if conf.problems:
        return line_problems(str(path), conf)
    settings = {e.key: e.value for e in conf.entries.values()}
    return [ok(f"{path}: WSL reads every line", evidence={"settings": settings})]


def wslconf_file(conf: WslConfig | None) -> list[Finding]:
    if conf is None:
        return [info("No /etc/wsl.conf: WSL's defaults apply")]
    findings = line_problems("/etc/wsl.conf", conf)
    if conf.flag("network.generateResolvConf") is False:
        findings.append(info("generateResolvConf=false: /etc/resolv.conf is yours to keep working"))
    return findings or [ok("/etc/wsl.conf: WSL reads every line")]


def config_mode(conf: WslConfig | None, live: str | None) -> list[Finding]:
    """What .wslconfig asks for against what runs (mirrored falls back to NAT silently)."""
    if conf is None:
        return [skip("No .wslconfig to compare with the live mode")]
    findings: list[Finding] = []
    wanted = conf.get("wsl2.networkingMode") or conf.get("experimental.networkingMode") or "nat"
    if wanted.lower() != live:
        findings.append(
            warn(
                f".wslconfig asks for {wanted} networking but {live} is running",
                detail="WSL falls back to NAT when mirrored mode's requirements are not met "
                "(Windows 11 22H2+, WSL 2.0+), or the file changed since the VM started",
                fix=Fix("restart WSL so the file applies", ["wsl --shutdown"]),
            )
        )
    if live == "mirrored":
        for key in ("wsl2.localhostForwarding", "wsl2.dnsProxy"):
            if conf.get(key) is not None:
                findings.append(info(f"{key.split('.')[1]} has no effect in mirrored mode"))
    if live == "nat":
        for key in ("experimental.hostAddressLoopback", "experimental.ignoredPorts"):
            if conf.get(key) is not None:
                findings.append(info(f"{key.split('.')[1]} has no effect in NAT mode"))
        if conf.flag("wsl2.localhostForwarding") is False:
            findings.append(
                warn(
                    "localhostForwarding=false: Windows cannot reach WSL on localhost",
                    fix=Fix(
                        "remove the line and run `wsl --shutdown`, or forward ports with wslnet"
                    ),
                )
            )
    return findings or [ok(f".wslconfig matches the live {live} mode")]


_LISTENER_STATUS: dict[str, Status] = {
    "yes": "ok",
    "ipv6-only": "warn",
    "no": "warn",
    "n/a": "info",
    "if-published": "info",  # a container's: fine once its port is published
}


def listeners(
    found: list[Listener], problems: list[Problem], port: int | None, mode: str | None
) -> list[Finding]:
    """One finding per listening socket (the verdicts come from listeners.judge)."""
    if port is not None:
        found = [x for x in found if x.port == port]
        if not found:
            return [
                fail(
                    f"Nothing listens on port {port}",
                    detail="start the service, or check the port it really uses (ss -ltnup)",
                )
            ]
    if mode is None and found:
        # Outside WSL there is no relay to judge: one line, the sockets as evidence.
        ports = sorted({f"{x.proto}/{x.port}" for x in found})
        return [
            info(
                f"{len(found)} listening sockets (not in WSL: Windows reachability does not apply)",
                detail=", ".join(ports[:20])
                + (f" and {len(ports) - 20} more" if len(ports) > 20 else ""),
                evidence={"listeners": [x.as_json() for x in found]},
            )
        ]
    findings = []
    for x in found:
        addr = f"[{x.address}]" if ":" in x.address else x.address
        who = f" ({x.process}, pid {x.pid})" if x.process else ""
        status: Status = _LISTENER_STATUS[x.windows_localhost]
        title = f"{x.proto} {addr}:{x.port}{who}: Windows localhost {x.windows_localhost}"
        findings.append(finding(status, title, detail=x.reason, fix=x.fix, evidence=x.as_json()))
    findings += [warn("A /proc/net line was unreadable", detail=str(p)) for p in problems]
    return findings or [info("No listening sockets")]


def host_address(host: HostAddress) -> list[Finding]:
    ev: dict[str, object] = {"candidates": [c.__dict__ for c in host.candidates]}
    if host.address is None:
        return [
            fail(
                "No address for the Windows host",
                detail=host.why_none,
                fix=Fix("check `ip route`: WSL's eth0 should have a default route"),
                evidence=ev,
            )
        ]
    detail = "; ".join(c.verdict for c in host.candidates if not c.usable)
    return [ok(f"Windows host is {host.address} ({host.source})", detail=detail, evidence=ev)]


def windows_port(
    state: str,
    title: str,
    host: str,
    port: int,
    evidence: dict[str, object],
    detail: str = "",
) -> Finding:
    """The verdict on a probe of a Windows port, shared by the connect and SYN probes."""
    if state == "open":
        return ok(title, evidence=evidence)
    if state in ("refused", "closed"):
        return fail(
            title,
            detail="nothing listens on that Windows port, or it listens on Windows' 127.0.0.1 only",
            fix=Fix(
                f"bind the Windows service to 0.0.0.0 (or {host}); check with "
                f"`netstat -ano | findstr :{port}` on Windows"
            ),
            evidence=evidence,
        )
    if state == "filtered":
        return fail(
            title,
            detail="no answer: the Windows firewall drops traffic from WSL on vEthernet (WSL)",
            fix=firewall_fix(),
            evidence=evidence,
        )
    return fail(
        title,
        detail=detail,
        fix=Fix(
            "a firewall rejects it (admin-prohibited) or there is no route: check the "
            "Windows firewall and `ip route`"
        ),
        evidence=evidence,
    )


def resolv_conf(text: str | None, conf: ResolvConf | None) -> list[Finding]:
    """What is wrong with /etc/resolv.conf before any query is sent."""
    if text is None or conf is None:
        return [
            fail(
                "/etc/resolv.conf is missing or unreadable",
                fix=Fix(
                    "let WSL generate it: remove generateResolvConf=false from "
                    "/etc/wsl.conf and run `wsl --shutdown`"
                ),
            )
        ]
    findings = [
        warn("/etc/resolv.conf has a line resolvers ignore", detail=str(p)) for p in conf.problems
    ]
    if not conf.nameservers:
        findings.append(fail("No nameserver in /etc/resolv.conf"))
    return findings


def resolver_answer(result: DnsResult, conf: ResolvConf, in_wsl: bool) -> Finding:
    ev: dict[str, object] = {
        "server": result.server,
        "responder": result.responder,
        "seconds": result.seconds,
        "generated_by_wsl": conf.generated_by_wsl,
    }
    server = result.server
    if result.alive:
        ms = result.seconds * 1000
        return ok(f"Resolver {server} answers ({result.detail}, {ms:.0f} ms)", evidence=ev)
    fix = Fix(
        "turn on dnsTunneling=true under [wsl2] in .wslconfig, `wsl --shutdown`; "
        "behind a VPN, or if that fails: set generateResolvConf=false in /etc/wsl.conf "
        "and write a working nameserver into /etc/resolv.conf"
        if in_wsl
        else "point /etc/resolv.conf at a resolver that answers from here"
    )
    return fail(
        f"Resolver {server} does not answer: {result.detail}",
        detail="name lookups fail with 'Temporary failure in name resolution'",
        fix=fix,
        evidence=ev,
    )


def host_layer2(address: str, arp: ArpResult, echo: EchoResult) -> Finding:
    """Is the Windows side of the WSL switch there, and does it answer ICMP?"""
    ev: dict[str, object] = {"arp": arp.as_json(), "echo": echo.__dict__}
    if arp.mac is None:
        return fail(
            f"{address} does not answer ARP on {arp.interface}",
            detail="the Windows side of the WSL switch is gone (often after sleep or a "
            "network change)",
            fix=Fix("restart WSL from Windows", ["wsl --shutdown"]),
            evidence=ev,
        )
    if not echo.answered:
        return warn(
            f"{address} is up (ARP from {arp.mac}) but drops ICMP echo",
            detail="host up, firewall dropping: the Windows firewall filters what WSL sends",
            fix=firewall_fix(),
            evidence=ev,
        )
    rtt = f"{echo.rtt * 1000:.1f} ms" if echo.rtt is not None else "?"
    return ok(f"{address} is up: ARP from {arp.mac}, echo in {rtt}", evidence=ev)


def path_mtu(r: MtuResult) -> Finding:
    ev = r.as_json()
    if r.path_mtu is None:
        why = "; ".join(r.notes) or "nothing answered"
        return skip(f"Path MTU to {r.host}: unknown, because {why}", evidence=ev)
    if r.path_mtu >= r.interface_mtu:
        return ok(f"Path MTU to {r.host} is {r.path_mtu}, as {r.interface}'s", evidence=ev)
    n = r.path_mtu
    return fail(
        f"Path MTU to {r.host} is {n}, below {r.interface}'s {r.interface_mtu} ({r.method})",
        detail="large packets vanish on this path (a VPN?): ssh works, git clone and big "
        "downloads stall",
        fix=Fix(
            f"lower the MTU; to keep it, add `[boot]` `command = ip link set dev "
            f"{r.interface} mtu {n}` to /etc/wsl.conf",
            [f"sudo ip link set dev {r.interface} mtu {n}"],
        ),
        evidence=ev,
    )
