"""network.mirrored: mirrored mode's own failures and settings."""

from __future__ import annotations

from wslnet.check.model import Finding, fail, info
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
                [HYPERV_ALLOW],
            ),
        )
    )
    return findings
