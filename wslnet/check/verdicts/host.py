"""host.*, raw.syn: the Windows host's address, and probes of its ports."""

from __future__ import annotations

from dataclasses import asdict

from wslnet.check.model import Finding, fail, ok, warn
from wslnet.check.verdicts.firewall import firewall_fix
from wslnet.hostaddr import HostAddress
from wslnet.verdict import Fix, HostPath


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
    if state in ("refused", "closed"):
        return _closed(title, host, port, evidence)
    if path is not None:
        evidence = {**evidence, "path": asdict(path)}
        broken = _broken_path(title, host, path, evidence)
        if broken is not None:
            return broken
    if state == "filtered":
        return fail(
            title,
            detail="no answer: the Windows firewall drops traffic from WSL on vEthernet (WSL)",
            fix=firewall_fix(),
            evidence=evidence,
        )
    return _rejected(title, detail, path, evidence)


def _broken_path(
    title: str, host: str, path: HostPath, evidence: dict[str, object]
) -> Finding | None:
    """No route, a route through another interface, or a host that does not answer ARP;
    None when the path to the host is sound."""
    if path.interface is None:
        return fail(
            title,
            detail=f"there is no route to {host} from here",
            fix=Fix("restart WSL so it sets up its network again", ["wsl --shutdown"], "windows"),
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
            fix=Fix("restart WSL from Windows", ["wsl --shutdown"], "windows"),
            evidence=evidence,
        )
    return None


def _closed(title: str, host: str, port: int, evidence: dict[str, object]) -> Finding:
    return fail(
        title,
        detail="nothing listens on that Windows port, or it listens on Windows' 127.0.0.1 only",
        fix=Fix(
            f"bind the Windows service to 0.0.0.0 (or {host}); check with "
            f"`netstat -ano | findstr :{port}` on Windows"
        ),
        evidence=evidence,
    )


def _rejected(
    title: str, detail: str, path: HostPath | None, evidence: dict[str, object]
) -> Finding:
    """Unreachable (no route, or rejected): with no path facts, either may be so."""
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
