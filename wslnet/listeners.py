"""Listening sockets, and whether Windows (and the LAN) can reach each one, and why.

Facts (shared wsl-networking.md section 4): the NAT-mode localhost relay forwards TCP
only, and only listeners bound to exactly 0.0.0.0, 127.0.0.1, :: or ::1; an IPv6 bind is
reachable from Windows only as [::1]; it listens on Windows loopback, never the LAN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from wslnet import system
from wslnet.facts import Problem, procnet

Reach = Literal["yes", "ipv6-only", "no"]
FILES = (
    ("tcp", "ipv4", "tcp"),
    ("tcp", "ipv6", "tcp6"),
    ("udp", "ipv4", "udp"),
    ("udp", "ipv6", "udp6"),
)


@dataclass
class Listener:
    proto: str
    family: str
    address: str
    port: int
    pid: int | None
    process: str | None
    windows_localhost: Reach
    reason: str
    vm_address: bool  # reachable at the VM's address (from Windows, NAT mode)
    lan: bool
    fix: str | None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def judge(
    entry: procnet.SocketEntry,
    mode: str | None,
    forwarding: bool,
    vm_addrs: list[str],
    forward_cmd: str,
) -> tuple[Reach, str, bool, str | None]:
    """(windows_localhost, reason, reachable at the VM address, fix) for one listener."""
    addr, port = entry.address, entry.port
    any4, any6 = addr == "0.0.0.0", addr == "::"
    vm = any4 or any6 or addr in vm_addrs
    if mode is None:
        return "no", "not running in WSL", vm, None
    if mode == "wsl1":
        return "yes", "WSL1 shares Windows' network stack", True, None
    if mode == "mirrored":
        if entry.family == "ipv6" and not any6:
            return (
                "no",
                "mirrored mode reaches Linux over IPv4 only",
                False,
                (f"bind 0.0.0.0:{port} or 127.0.0.1:{port}"),
            )
        return "yes", "mirrored mode shares localhost (TCP and UDP)", vm, None
    if mode != "nat":
        return "no", f"networking mode {mode!r} has no localhost relay", vm, None
    if entry.proto == "udp":
        fix = (
            f"WSL's relay never forwards UDP: use the VM address ({vm_addrs[0]}:{port})"
            if vm and vm_addrs
            else "WSL's relay never forwards UDP: bind 0.0.0.0 and use the VM address"
        )
        return (
            "no",
            "UDP is never forwarded by WSL's localhost relay",
            vm,
            (fix + f", mirrored mode, or on Windows: {forward_cmd.replace('tcp/', 'udp/')}"),
        )
    if not forwarding:
        return (
            "no",
            "localhostForwarding=false in .wslconfig",
            vm,
            (f"remove localhostForwarding=false, or on Windows: {forward_cmd}"),
        )
    if any4 or addr == "127.0.0.1":
        return "yes", f"bound to {addr}: WSL's relay forwards 127.0.0.1:{port}", vm, None
    if any6 or addr == "::1":
        return (
            "ipv6-only",
            f"bound to {addr}: reachable only as [::1]:{port}, not 127.0.0.1",
            vm,
            (f"bind 0.0.0.0:{port} too (or use http://[::1]:{port}), or on Windows: {forward_cmd}"),
        )
    if addr.startswith("127.") or addr.startswith("::ffff:127."):
        return (
            "no",
            f"bound to {addr}: the relay forwards only 127.0.0.1, not other 127.x",
            False,
            (f"bind 127.0.0.1:{port} (or 0.0.0.0:{port})"),
        )
    return (
        "no",
        f"bound to {addr}: the relay does not forward the eth0 address (#10206)",
        vm,
        (f"bind 0.0.0.0:{port}, or on Windows: {forward_cmd}"),
    )


def collect(
    mode: str | None, forwarding: bool, vm_addrs: list[str]
) -> tuple[list[Listener], list[Problem]]:
    owners = system.socket_owners()
    out: list[Listener] = []
    problems: list[Problem] = []
    for proto, family, name in FILES:
        text = system.read_text(f"/proc/net/{name}")
        if text is None:
            continue
        entries, probs = procnet.parse(text, proto, family)  # type: ignore[arg-type]
        problems += [Problem(p.line, p.text, f"/proc/net/{name}: {p.why}") for p in probs]
        for e in entries:
            if not e.listening:
                continue
            target = vm_addrs[0] if vm_addrs else "<WSL address>"
            cmd = f"wslnet forward tcp/{e.port}={target}:{e.port}"
            reach, reason, vm, fix = judge(e, mode, forwarding, vm_addrs, cmd)
            pid, proc = owners.get(e.inode, (None, None))
            lan = False  # WSL's relay listens on Windows loopback only
            out.append(
                Listener(
                    e.proto, e.family, e.address, e.port, pid, proc, reach, reason, vm, lan, fix
                )
            )
    out.sort(key=lambda x: (x.port, x.proto, x.family, x.address))
    return out, problems


def render_table(found: list[Listener]) -> str:
    """`wslnet listeners` for people: one line per socket."""
    lines = [f"{'PROTO':<6}{'ADDRESS':<28}{'PROCESS':<20}{'WINDOWS':<11}WHY"]
    for x in found:
        where = f"[{x.address}]:{x.port}" if ":" in x.address else f"{x.address}:{x.port}"
        proto = x.proto + ("6" if x.family == "ipv6" else "")
        who = f"{x.process}/{x.pid}" if x.process else "-"
        lines.append(f"{proto:<6}{where:<28}{who:<20}{x.windows_localhost:<11}{x.reason}")
    return "\n".join(lines)
