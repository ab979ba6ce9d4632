"""dns.*: /etc/resolv.conf and whether its resolvers answer."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from typing import TYPE_CHECKING

from wslnet.check.model import Finding, fail, ok, warn
from wslnet.facts.resolv import DEFAULT_TUNNEL, RESOLVED_STUB, ResolvConf
from wslnet.verdict import Fix

if TYPE_CHECKING:
    from wslnet.probe.dns import DnsResult

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
                "windows",
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
