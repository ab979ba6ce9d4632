"""Listening sockets, and whether Windows (and the LAN) can reach each one, and why.

Facts (shared wsl-networking.md section 4): the NAT-mode localhost relay forwards TCP
only, and only listeners bound to exactly 0.0.0.0, 127.0.0.1, :: or ::1; an IPv6 bind is
reachable from Windows only as [::1]; it listens on Windows loopback, never the LAN.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Literal

from wslnet import system
from wslnet.check.model import Fix
from wslnet.facts import Problem, procnet, resolv

# n/a: not in WSL, no relay to judge; if-published: a container's, through docker -p
Reach = Literal["yes", "ipv6-only", "no", "n/a", "if-published"]
FILES = (
    ("tcp", "ipv4", "tcp"),
    ("tcp", "ipv6", "tcp6"),
    ("udp", "ipv4", "udp"),
    ("udp", "ipv6", "udp6"),
)


@dataclass(frozen=True)
class Reachability:
    """Whether Windows reaches one listener, why, and what would make it reachable."""

    windows_localhost: Reach
    reason: str
    vm_address: bool  # reachable at the VM's address (from Windows, NAT mode)
    fix: Fix | None = None


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
    vm_address: bool
    lan: bool
    fix: Fix | None

    def as_json(self) -> dict[str, object]:
        doc = asdict(self)
        fix = self.fix
        doc["fix"] = fix.text if fix is not None else None
        doc["fix_commands"] = fix.commands if fix is not None else []
        return doc


def forward_command(proto: str, port: int, vm_addrs: list[str]) -> str:
    """The `wslnet forward` a user runs on Windows to reach this listener."""
    target = vm_addrs[0] if vm_addrs else "<WSL address>"
    return f"wslnet forward {proto}/{port}={target}:{port}"


def judge(
    entry: procnet.SocketEntry,
    mode: str | None,
    forwarding: bool,
    vm_addrs: list[str],
    container: bool = False,
    tunnel: Collection[str] = resolv.DEFAULT_TUNNEL,
) -> Reachability:
    """The verdict on one listener (section 4 of the shared facts)."""
    addr, port = entry.address, entry.port
    any4, any6 = addr == "0.0.0.0", addr == "::"
    vm = any4 or any6 or addr in vm_addrs
    own = wsl_own(entry, tunnel)
    if own is not None:
        return Reachability("n/a", own, False)
    if container:
        return _in_container(entry)
    forward = forward_command(entry.proto, port, vm_addrs)
    on_windows = f"; or on Windows: {forward}"
    if mode is None:
        return Reachability("n/a", "not in WSL: there is no WSL relay to judge", vm)
    if mode == "wsl1":
        return Reachability("yes", "WSL1 shares Windows' network stack", True)
    if mode == "mirrored":
        if entry.family == "ipv6" and not any6:
            why = "mirrored mode reaches Linux over IPv4 only"
            return Reachability("no", why, False, Fix(f"bind 0.0.0.0:{port} or 127.0.0.1:{port}"))
        return Reachability("yes", "mirrored mode shares localhost (TCP and UDP)", vm)
    if mode != "nat":
        return Reachability("no", f"networking mode {mode!r} has no localhost relay", vm)
    if entry.proto == "udp":
        where = (
            f"use the VM address ({vm_addrs[0]}:{port})"
            if vm and vm_addrs
            else "bind 0.0.0.0 and use the VM address"
        )
        fix = Fix(f"WSL's relay never forwards UDP: {where}, mirrored mode{on_windows}", [forward])
        return Reachability("no", "UDP is never forwarded by WSL's localhost relay", vm, fix)
    if not forwarding:
        fix = Fix(f"remove localhostForwarding=false{on_windows}", [forward])
        return Reachability("no", "localhostForwarding=false in .wslconfig", vm, fix)
    if any4 or addr == "127.0.0.1":
        return Reachability("yes", f"bound to {addr}: WSL's relay forwards 127.0.0.1:{port}", vm)
    if any6 or addr == "::1":
        why = f"bound to {addr}: reachable only as [::1]:{port}, not 127.0.0.1"
        text = f"bind 0.0.0.0:{port} too (or use http://[::1]:{port}){on_windows}"
        return Reachability("ipv6-only", why, vm, Fix(text, [forward]))
    if addr.startswith("127.") or addr.startswith("::ffff:127."):
        why = f"bound to {addr}: the relay forwards only 127.0.0.1, not other 127.x"
        return Reachability("no", why, False, Fix(f"bind 127.0.0.1:{port} (or 0.0.0.0:{port})"))
    why = f"bound to {addr}: the relay does not forward the eth0 address (#10206)"
    return Reachability("no", why, vm, Fix(f"bind 0.0.0.0:{port}{on_windows}", [forward]))


def wsl_own(
    entry: procnet.SocketEntry, tunnel: Collection[str] = resolv.DEFAULT_TUNNEL
) -> str | None:
    """What a socket is when WSL or the distribution runs it for itself (not a service
    of the user's, so nothing to reach from Windows), else None."""
    if entry.port == 53 and entry.address in tunnel:
        return "WSL's DNS tunnel (dnsTunneling): WSL's own, not a service to reach"
    if entry.port == 53 and entry.address in resolv.RESOLVED_STUB:
        return "systemd-resolved's local DNS stub: the distribution's own resolver"
    return None


def _in_container(entry: procnet.SocketEntry) -> Reachability:
    """A container's listener is reached from Windows only through a published port,
    which arrives on the container's own interface, never on its loopback."""
    port = entry.port
    if entry.address.startswith("127.") or entry.address == "::1":
        why = f"bound to {entry.address} inside the container: a published port cannot reach it"
        return Reachability("no", why, False, Fix(f"bind 0.0.0.0:{port} inside the container"))
    why = "in a container: Windows reaches it only through a published port"
    fix = Fix(
        f"publish it: docker run -p {port}:{port} (ports: in compose, forwardPorts: [{port}] "
        "in devcontainer.json); Windows then reaches localhost:" + str(port)
    )
    return Reachability("if-published", why, False, fix)


def from_entries(
    entries: list[procnet.SocketEntry],
    mode: str | None,
    forwarding: bool,
    vm_addrs: list[str],
    container: bool = False,
    owners: dict[int, tuple[int, str]] | None = None,
    tunnel: Collection[str] = resolv.DEFAULT_TUNNEL,
) -> list[Listener]:
    """The verdicts on the listening sockets among `entries` (pure)."""
    out: list[Listener] = []
    for e in entries:
        if not e.listening:
            continue
        r = judge(e, mode, forwarding, vm_addrs, container, tunnel)
        pid, proc = (owners or {}).get(e.inode, (None, None))
        lan = False  # WSL's relay listens on Windows loopback only
        out.append(
            Listener(
                e.proto, e.family, e.address, e.port, pid, proc,
                r.windows_localhost, r.reason, r.vm_address, lan, r.fix,
            )
        )  # fmt: skip
    out.sort(key=lambda x: (x.port, x.proto, x.family, x.address))
    return out


def collect(
    mode: str | None,
    forwarding: bool,
    vm_addrs: list[str],
    container: bool = False,
    tunnel: Collection[str] = resolv.DEFAULT_TUNNEL,
) -> tuple[list[Listener], list[Problem]]:
    """This system's listeners, read from /proc/net, with their verdicts."""
    entries: list[procnet.SocketEntry] = []
    problems: list[Problem] = []
    for proto, family, name in FILES:
        text = system.read_text(f"/proc/net/{name}")
        if text is None:
            continue
        found, probs = procnet.parse(text, proto, family)  # type: ignore[arg-type]
        entries += found
        problems += [Problem(p.line, p.text, f"/proc/net/{name}: {p.why}") for p in probs]
    owners = system.socket_owners()
    judged = from_entries(entries, mode, forwarding, vm_addrs, container, owners, tunnel)
    return judged, problems


def render_table(found: list[Listener]) -> str:
    """`wslnet listeners` for people: one line per socket."""
    lines = [f"{'PROTO':<6}{'ADDRESS':<28}{'PROCESS':<20}{'WINDOWS':<11}WHY"]
    for x in found:
        where = f"[{x.address}]:{x.port}" if ":" in x.address else f"{x.address}:{x.port}"
        proto = x.proto + ("6" if x.family == "ipv6" else "")
        who = f"{x.process}/{x.pid}" if x.process else "-"
        lines.append(f"{proto:<6}{where:<28}{who:<20}{x.windows_localhost:<11}{x.reason}")
    return "\n".join(lines)
