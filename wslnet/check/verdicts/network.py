"""network.mirrored: mirrored mode's own failures and settings."""

from __future__ import annotations

from wslnet.check.model import Finding, fail, info, ok, warn
from wslnet.check.verdicts.firewall import HYPERV_ALLOW
from wslnet.facts.wslconfig import WslConfig
from wslnet.verdict import Fix


def mirrored(has_default_route: bool, conf: WslConfig | None) -> list[Finding]:
    """Mirrored mode's own failures and the settings that change what reaches what."""
    findings = []
    if not has_default_route:
        findings.append(
            fail(
                "Mirrored mode has no default route: nothing beyond this machine is reachable",
                detail="a known failure after sleep, or when a VPN comes or goes",
                fix=Fix("restart WSL from Windows", ["wsl --shutdown"], "windows"),
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
                [HYPERV_ALLOW],
                "windows-admin",
            ),
        )
    )
    return findings


def ignored_ports(conf: WslConfig | None, ports: list[int]) -> list[Finding]:
    """Mirrored mode's ignoredPorts naming a port a WSL listener uses: Linux may bind it,
    but Windows does not route it to WSL (shared wsl-networking.md section 9)."""
    listed = _port_list(conf.get("experimental.ignoredPorts") if conf else None)
    if not listed:
        return [ok("No ignoredPorts in .wslconfig")]
    hit = sorted(set(listed) & set(ports))
    if not hit:
        return [ok(f"ignoredPorts ({', '.join(map(str, listed))}): no WSL listener uses them")]
    return [
        warn(
            f"Port {port} is in ignoredPorts: Windows does not route it to the WSL listener",
            detail="ignoredPorts lets Linux bind ports Windows uses; Windows and the LAN "
            "reach the Windows program on it, never WSL",
            fix=Fix(
                f"remove {port} from ignoredPorts under [experimental] in .wslconfig and run "
                "`wsl --shutdown`, or move the WSL service to another port"
            ),
            evidence={"ignoredPorts": listed, "port": port},
        )
        for port in hit
    ]


def _port_list(value: str | None) -> list[int]:
    return [int(p) for p in (value or "").replace(" ", "").split(",") if p.isdigit()]
