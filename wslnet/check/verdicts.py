"""The doctor's pure core: facts in, findings out. No I/O, no clock, no printing.

The check functions in checks.py and raw_checks.py gather the facts and call these; the
tests call these directly with recorded or constructed facts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from typing import TYPE_CHECKING

from wslnet.check.context import HostPath
from wslnet.check.model import Finding, Fix, Status, fail, finding, info, ok, skip, warn
from wslnet.facts.proxy import Proxy
from wslnet.facts.resolv import DEFAULT_TUNNEL, RESOLVED_STUB, ResolvConf
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


def mode_mismatch(wanted: str, live: str) -> Finding:
    """.wslconfig asks for one networking mode and another runs."""
    return warn(
        f".wslconfig asks for {wanted} networking but {live} is running",
        detail="WSL falls back to NAT when mirrored mode's requirements are not met "
        "(Windows 11 22H2+, WSL 2.0+), or the file changed since the VM started",
        fix=Fix("restart WSL so the file applies", ["wsl --shutdown"]),
    )


def config_mode(conf: WslConfig | None, live: str | None) -> list[Finding]:
    """What .wslconfig asks for against what runs (mirrored falls back to NAT silently)."""
    if conf is None:
        return [skip("No .wslconfig to compare with the live mode")]
    findings: list[Finding] = []
    wanted = conf.get("wsl2.networkingMode") or conf.get("experimental.networkingMode") or "nat"
    if wanted.lower() != live:
        findings.append(mode_mismatch(wanted, str(live)))
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


_REACH_RANK = {"yes": 0, "ipv6-only": 1, "if-published": 2, "no": 3, "n/a": 4}


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
    # Per port: a dev server on 127.0.0.1 and ::1 (what `localhost` gives node and vite)
    # is reachable through its IPv4 socket; its ::1 socket is no problem of its own.
    groups: dict[tuple[str, int], list[Listener]] = {}
    for x in found:
        groups.setdefault((x.proto, x.port), []).append(x)
    findings = []
    for (proto, number), sockets in groups.items():
        best = min(sockets, key=lambda x: _REACH_RANK[x.windows_localhost])
        where = ", ".join(
            f"[{x.address}]:{number}" if ":" in x.address else f"{x.address}:{number}"
            for x in sockets
        )
        owner = next((x for x in sockets if x.process), None)
        who = f" ({owner.process}, pid {owner.pid})" if owner is not None else ""
        title = f"{proto} {where}{who}: Windows localhost {best.windows_localhost}"
        evidence = best.as_json()
        if len(sockets) > 1:
            evidence["sockets"] = [x.as_json() for x in sockets]
        status = _LISTENER_STATUS[best.windows_localhost]
        findings.append(finding(status, title, detail=best.reason, fix=best.fix, evidence=evidence))
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
    ev["address"] = host.address
    findings = [ok(f"Windows host is {host.address} ({host.source})", detail=detail, evidence=ev)]
    for c in host.candidates:
        if c.source == "/etc/hosts" and not c.usable and c.address != host.address:
            findings.append(
                warn(
                    f"host.docker.internal in /etc/hosts is {c.address}, not the host "
                    f"({host.address})",
                    detail="Docker Desktop writes it into Windows' hosts file, and WSL copies "
                    "that file; here it is stale (or the LAN address), so tools that use the "
                    "name miss the host",
                    fix=Fix(
                        "use the host's address instead of the name, e.g. $(wslnet ip host); "
                        "or correct the line in C:\\Windows\\System32\\drivers\\etc\\hosts "
                        "and restart WSL",
                        ["wslnet ip host"],
                    ),
                    evidence={"entry": c.address, "host": host.address},
                )
            )
    return findings


def windows_port(
    state: str,
    title: str,
    host: str,
    port: int,
    evidence: dict[str, object],
    detail: str = "",
    path: HostPath | None = None,
) -> Finding:
    """The verdict on a probe of a Windows port, shared by the connect and SYN probes.
    Silence is the firewall only when the host is there: the path facts come first."""
    if state == "open":
        return ok(title, evidence=evidence)
    if path is not None and state not in ("refused", "closed"):
        evidence = {**evidence, "path": asdict(path)}
        if path.interface is None:
            return fail(
                title,
                detail=f"there is no route to {host} from here",
                fix=Fix("restart WSL so it sets up its network again", ["wsl --shutdown"]),
                evidence=evidence,
            )
        if path.shadowed:
            return fail(
                title,
                detail=f"the route to {host} leaves through {path.interface}, not "
                f"{path.expected}: a Docker network or a VPN route overlaps the host's "
                "subnet",
                fix=Fix(
                    f"see it with `ip route get {host}`; remove or move the overlapping "
                    'network (docker network rm, or "default-address-pools" in Docker\'s '
                    "daemon.json)",
                    [f"ip route get {host}"],
                ),
                evidence=evidence,
            )
        if path.answered_arp is False:
            return fail(
                title,
                detail=f"{host} does not answer ARP on {path.interface}: the Windows side of "
                "the WSL switch is gone (often after sleep or a network change)",
                fix=Fix("restart WSL from Windows", ["wsl --shutdown"]),
                evidence=evidence,
            )
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
    if path is None:
        return fail(
            title,
            detail=detail,
            fix=Fix(
                "a firewall rejects it (admin-prohibited) or there is no route: check the "
                "Windows firewall and `ip route`"
            ),
            evidence=evidence,
        )
    # Unreachable from a host that is there (it answered ARP): its firewall rejects it
    # (ICMP admin-prohibited), which the kernel reports as "no route to host".
    return fail(
        title,
        detail=(detail + "; " if detail else "") + "the host is up: its firewall rejects it",
        fix=firewall_fix(),
        evidence=evidence,
    )


SLOW_DNS = 1.0  # seconds: people call a resolver this slow "slow internet"


def resolv_conf(
    text: str | None, conf: ResolvConf | None, link: str | None = None, in_wsl: bool = True
) -> list[Finding]:
    """What is wrong with /etc/resolv.conf before any query is sent."""
    regenerate = ["sudo rm /etc/resolv.conf", "wsl --shutdown"] if in_wsl else []
    if text is None or conf is None:
        if link is not None:
            return [
                fail(
                    f"/etc/resolv.conf is a link to {link}, which does not exist",
                    detail="a tool (or a stopped systemd-resolved) left it dangling: "
                    "no program on this system can resolve names",
                    fix=Fix(
                        "remove the dangling link; WSL writes a new file when it starts"
                        if in_wsl
                        else "replace it with a file that names a working nameserver",
                        regenerate or ["sudo rm /etc/resolv.conf"],
                    ),
                    evidence={"link": link},
                )
            ]
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


def resolver_answer(
    result: DnsResult,
    conf: ResolvConf,
    in_wsl: bool,
    tcp: DnsResult | None = None,
    tunnel: Collection[str] = DEFAULT_TUNNEL,
) -> Finding:
    """One nameserver: dead (and why), slow, UDP without TCP, or fine."""
    ev: dict[str, object] = {
        "server": result.server,
        "responder": result.responder,
        "seconds": result.seconds,
        "generated_by_wsl": conf.generated_by_wsl,
        "tcp": asdict(tcp) if tcp is not None else None,
    }
    server = result.server
    ms = result.seconds * 1000
    if result.alive and result.seconds > SLOW_DNS:
        return warn(
            f"Resolver {server} answers, but slowly ({ms:.0f} ms)",
            detail="every name lookup waits this long: it feels like a slow internet",
            fix=Fix(
                "use WSL's DNS tunnel (dnsTunneling=true under [wsl2] in .wslconfig, then "
                "`wsl --shutdown`), or a faster nameserver"
                if in_wsl
                else "use a faster nameserver"
            ),
            evidence=ev,
        )
    if result.alive and tcp is not None and not tcp.alive:
        return warn(
            f"Resolver {server} answers over UDP but not over TCP ({tcp.detail})",
            detail="large answers (many records, DNSSEC) need TCP: those lookups fail",
            fix=Fix(f"let TCP port 53 through to {server} (a firewall or VPN blocks it)"),
            evidence=ev,
        )
    if result.alive:
        return ok(f"Resolver {server} answers ({result.detail}, {ms:.0f} ms)", evidence=ev)
    if server in RESOLVED_STUB:
        return fail(
            f"systemd-resolved's stub {server} does not answer: {result.detail}",
            detail="resolv.conf sends every lookup to systemd-resolved, which is not running",
            fix=Fix(
                "start systemd-resolved, or let WSL write /etc/resolv.conf again "
                "(`sudo rm /etc/resolv.conf`, then `wsl --shutdown` from Windows)",
                ["sudo systemctl restart systemd-resolved"],
            ),
            evidence=ev,
        )
    if server in tunnel and in_wsl:
        return fail(
            f"WSL's DNS tunnel {server} does not answer: {result.detail}",
            detail="name lookups fail with 'Temporary failure in name resolution'",
            fix=Fix(
                "restart WSL; if it stays broken (a VPN?), turn the tunnel off with "
                "dnsTunneling=false under [wsl2] in .wslconfig",
                ["wsl --shutdown"],
            ),
            evidence=ev,
        )
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


def path_mtu(r: MtuResult, path: HostPath | None = None) -> Finding:
    ev = r.as_json()
    if r.path_mtu is None:
        why = "; ".join(r.notes) or "nothing answered"
        if path is not None and path.answered_arp is False:
            why = f"{r.host} does not answer ARP on {path.interface} (see host.reach, raw.host)"
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


def proxy(p: Proxy, state: str, mode: str | None) -> Finding:
    """A proxy setting and whether its address answered a connect."""
    ev: dict[str, object] = {"source": p.source, "url": p.url, "state": state}
    where = f"{p.host}:{p.port}"
    if state == "open":
        return ok(f"{p.source} proxy {where} answers", evidence=ev)
    if p.loopback and mode == "nat":
        return warn(
            f"{p.source} points at {where}: in NAT mode that is this VM, not Windows",
            detail="WSL says 'A localhost proxy configuration was detected but not mirrored "
            "into WSL': a proxy on Windows' localhost is not reachable as localhost here",
            fix=Fix(
                "use the Windows host's address (and let the proxy listen beyond 127.0.0.1 "
                "on Windows), or networkingMode=mirrored with autoProxy=true in .wslconfig",
                [f"export {p.source}=http://$(wslnet ip host):{p.port}"]
                if p.source.upper().endswith("_PROXY")
                else [],
            ),
            evidence=ev,
        )
    return warn(
        f"{p.source} proxy {where} does not answer ({state})",
        detail="programs that use this setting cannot reach the internet",
        fix=Fix(f"start the proxy, or correct or unset {p.source}"),
        evidence=ev,
    )


HYPERV_VM = "{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}"


def mirrored(has_default_route: bool, conf: WslConfig | None) -> list[Finding]:
    """Mirrored mode's own failures and the settings that change what reaches what."""
    findings = []
    if not has_default_route:
        findings.append(
            fail(
                "Mirrored mode has no default route: nothing beyond this machine is reachable",
                detail="a known failure after sleep, or when a VPN comes or goes",
                fix=Fix("restart WSL from Windows", ["wsl --shutdown"]),
            )
        )
    if conf is None or conf.flag("experimental.hostAddressLoopback") is not True:
        findings.append(
            info(
                "WSL reaches Windows services at 127.0.0.1 (hostAddressLoopback is off)",
                detail="a Windows service is not reachable here at the host's own LAN address",
                fix=Fix(
                    "to allow that, add hostAddressLoopback=true under [experimental] in "
                    ".wslconfig, then `wsl --shutdown`"
                ),
            )
        )
    findings.append(
        info(
            "The Hyper-V firewall filters inbound connections to WSL (blocked by default)",
            detail="if the LAN cannot reach a WSL service in mirrored mode, allow it there "
            "(PowerShell as administrator)",
            fix=Fix(
                "allow inbound connections to WSL",
                [f"Set-NetFirewallHyperVVMSetting -Name '{HYPERV_VM}' -DefaultInboundAction Allow"],
            ),
        )
    )
    return findings
