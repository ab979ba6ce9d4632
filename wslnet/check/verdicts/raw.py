"""raw.host, raw.mtu: the host at layer 2, and the path MTU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wslnet.check.model import Finding, fail, ok, skip, warn
from wslnet.check.verdicts.firewall import firewall_fix
from wslnet.verdict import Fix, HostPath

if TYPE_CHECKING:
    from wslnet.probe.raw import ArpResult, EchoResult, MtuResult


def host_layer2(address: str, arp: ArpResult, echo: EchoResult) -> Finding:
    """Is the Windows side of the WSL switch there, and does it answer ICMP?"""
    ev: dict[str, object] = {"arp": arp.as_json(), "echo": echo.__dict__}
    if arp.mac is None:
        return fail(
            f"{address} does not answer ARP on {arp.interface}",
            detail="the Windows side of the WSL switch is gone (often after sleep or a "
            "network change)",
            fix=Fix("restart WSL from Windows", ["wsl --shutdown"], "windows"),
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
