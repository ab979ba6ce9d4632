"""windows.vpn: a VPN client's adapter on Windows while WSL runs in NAT mode. VPN
clients commonly swallow WSL's traffic or DNS (shared wsl-networking.md section 9)."""

from __future__ import annotations

from wslnet.check.model import Finding, fail, info, ok
from wslnet.check.verdicts.windows import unreadable
from wslnet.check.windows_facts import PowerShellFacts
from wslnet.facts.windows import Adapter
from wslnet.verdict import Fix


def vpn_fix(adapter: Adapter) -> Fix:
    """The remedies that work, best first."""
    return Fix(
        "on Windows 11 22H2+: networkingMode=mirrored and dnsTunneling=true under [wsl2] in "
        ".wslconfig, then `wsl --shutdown`; or give the VPN adapter a higher interface metric "
        "(PowerShell as Administrator) so WSL's traffic is not taken; or a user-space tunnel "
        "such as wsl-vpnkit",
        [f'Set-NetIPInterface -InterfaceAlias "{adapter.name}" -InterfaceMetric 6000'],
        "windows-admin",
    )


def vpn(ps: PowerShellFacts, mode: str | None, dns_answers: bool | None = None) -> list[Finding]:
    """`dns_answers`: whether a resolver of WSL's answered (None: none asked)."""
    bad = unreadable("the network adapters", ps.output)
    if bad is not None:
        return [bad]
    found = [(a, product) for a in ps.adapters if (product := a.vpn) is not None]
    if not found:
        return [ok("No VPN adapter is up on Windows")]
    adapter, product = found[0]
    name = f"{product} ({adapter.name}: {adapter.description})"
    ev: dict[str, object] = {"adapter": adapter.name, "description": adapter.description,
                             "metric": adapter.metric, "mode": mode}  # fmt: skip
    if mode != "nat":
        return [info(f"VPN adapter up on Windows: {name}; {mode} mode", evidence=ev)]
    if dns_answers is False:
        return [
            fail(
                f"DNS does not answer while the {name} VPN is up on Windows (NAT mode)",
                detail="VPN clients commonly take WSL's traffic or DNS in NAT mode",
                fix=vpn_fix(adapter),
                evidence=ev,
            )
        ]
    return [
        info(
            f"VPN adapter up on Windows: {name}",
            detail="if DNS or the host stop answering in WSL while it is connected, the VPN "
            "is taking WSL's traffic (NAT mode)",
            fix=vpn_fix(adapter),
            evidence=ev,
        )
    ]
