"""The firewalls' verdicts and fixes (windows.firewall), and the fixes other checks
share: traffic from WSL that Windows drops, inbound traffic the Hyper-V firewall blocks."""

from __future__ import annotations

from wslnet.check.model import Finding, info, ok, warn
from wslnet.check.verdicts.windows import unreadable
from wslnet.check.windows_facts import PowerShellFacts
from wslnet.facts.windows import HYPERV_VM, new_firewall_rule
from wslnet.verdict import Action, Fix, ps_quote

FIREWALL_RULE = (
    'New-NetFirewallRule -DisplayName "WSL" -Direction Inbound '
    '-InterfaceAlias "vEthernet (WSL)" -Action Allow'
)
WSL_RULE_NAME = "wslnet-wsl-inbound"  # --fix names its rules, so the undo removes only them
# The checks that see traffic from WSL to Windows: each re-runs after the rule is added.
FROM_WSL_CHECKS = ("host.reach", "raw.host", "raw.syn", "windows.firewall")


def remove_rule(name: str) -> str:
    return f"Remove-NetFirewallRule -Name {ps_quote(name)}"


def firewall_fix() -> Fix:
    """The fix for traffic from WSL that the Windows firewall drops (section 7)."""
    add = (
        f"New-NetFirewallRule -Name {ps_quote(WSL_RULE_NAME)} -DisplayName 'WSL (wslnet)' "
        "-Direction Inbound -InterfaceAlias 'vEthernet (WSL)' -Action Allow"
    )
    return Fix(
        "allow WSL through the Windows firewall (PowerShell as administrator; the adapter "
        "may be hidden: Get-NetAdapter -IncludeHidden)",
        [FIREWALL_RULE],
        "windows-admin",
        Action("windows-admin", "allow inbound on vEthernet (WSL)", (add,),
               (remove_rule(WSL_RULE_NAME),), "remove the rule", FROM_WSL_CHECKS),
    )  # fmt: skip


def lan_port_fix(proto: str, port: int) -> Fix:
    """One port admitted from the LAN, in a rule of its own name."""
    name = f"wslnet-lan-{proto}-{port}"
    add = (
        f"New-NetFirewallRule -Name {ps_quote(name)} -DisplayName 'wslnet {port}' -Direction "
        f"Inbound -Protocol {proto.upper()} -LocalPort {port} -Action Allow"
    )
    return Fix(
        "allow it (PowerShell as Administrator)",
        [new_firewall_rule(proto, port)],
        "windows-admin",
        Action("windows-admin", f"allow inbound {proto.upper()} port {port} from the LAN",
               (add,), (remove_rule(name),), "remove the rule", ("windows.firewall",)),
    )  # fmt: skip


HYPERV_ALLOW = f"Set-NetFirewallHyperVVMSetting -Name '{HYPERV_VM}' -DefaultInboundAction Allow"


def hyperv_fix(before: str | None) -> Fix:
    """Inbound allowed for WSL's VM; the undo puts back the action it had."""
    back = f"Set-NetFirewallHyperVVMSetting -Name '{HYPERV_VM}' -DefaultInboundAction "
    return Fix(
        "allow inbound connections (PowerShell as Administrator), or one port "
        "with New-NetFirewallHyperVRule",
        [HYPERV_ALLOW],
        "windows-admin",
        Action("windows-admin", "set the Hyper-V firewall's inbound default for WSL to Allow",
               (HYPERV_ALLOW,), (back + (before or "NotConfigured"),),
               f"set it back to {before or 'NotConfigured'}", ("windows.firewall",)),
    )  # fmt: skip


def windows_firewall(
    mode: str | None, facts: PowerShellFacts, lan: list[tuple[str, int]] | None = None
) -> list[Finding]:
    """Both firewalls: Windows' (traffic from WSL to Windows services, NAT mode; the LAN
    ports a forwarder listens on) and the Hyper-V firewall (traffic into WSL, mirrored)."""
    bad = unreadable("the firewall settings", facts.output)
    if bad is not None:
        return [bad]
    findings = []
    profile = facts.wsl_profile
    state = facts.profiles.get(profile or "")
    if mode != "mirrored" and profile and state is not None:
        enabled, inbound = state
        if enabled is not False and inbound in ("Block", "NotConfigured") and facts.wsl_rules == 0:
            findings.append(
                warn(
                    f"vEthernet (WSL) is in the {profile} firewall profile, which blocks "
                    "inbound traffic, and no rule admits WSL",
                    detail="Windows services are not reachable from WSL (connections time "
                    "out) unless a rule allows them",
                    fix=firewall_fix(),
                    evidence={"profile": profile, "inbound": inbound, "rules": 0},
                )
            )
        else:
            rules = facts.wsl_rules if facts.wsl_rules is not None else "?"
            findings.append(
                ok(
                    f"Windows firewall: vEthernet (WSL) is {profile}, inbound {inbound}, "
                    f"{rules} rules admit WSL"
                )
            )
    findings += lan_rules(facts, lan or [])
    return findings + hyperv_firewall(mode, facts)


def lan_rules(facts: PowerShellFacts, lan: list[tuple[str, int]]) -> list[Finding]:
    """Each port a forwarder listens on for the LAN, against the enabled inbound Allow
    rules (ranges, lists, Any, protocol Any, group policy's among them)."""
    if facts.inbound is None:
        return []
    findings = []
    for proto, port in sorted(lan):
        rules = facts.admitting(proto, port)
        if rules:
            findings.append(ok(f"{rules} firewall rules admit {proto.upper()} port {port} (LAN)"))
            continue
        findings.append(
            warn(
                f"wslnet forward listens on {proto.upper()} port {port} for the LAN, but no "
                "firewall rule admits it",
                detail="LAN clients time out until an inbound rule allows the port",
                fix=lan_port_fix(proto, port),
            )
        )
    return findings


def hyperv_firewall(mode: str | None, facts: PowerShellFacts) -> list[Finding]:
    """The Hyper-V firewall's verdict on inbound traffic to WSL (it matters in mirrored).
    Enabled is three-state: NotConfigured (None) leaves it on, WSL's default."""
    hv = facts.hyperv
    if hv is None:
        return [info("The Hyper-V firewall setting could not be read (Windows 11 22H2+ only)")]
    if hv.enabled is False:
        return [ok("Hyper-V firewall: off for WSL", evidence=hv.raw)]
    if hv.inbound == "Block" and mode == "mirrored":
        return [
            warn(
                "The Hyper-V firewall blocks inbound connections to WSL (mirrored mode)",
                detail="LAN clients (and Windows itself for some ports) cannot reach WSL "
                "services until a rule allows them",
                fix=hyperv_fix(hv.inbound),
                evidence=hv.raw,
            )
        ]
    return [ok(f"Hyper-V firewall: inbound {hv.inbound or 'not set'}", evidence=hv.raw)]
