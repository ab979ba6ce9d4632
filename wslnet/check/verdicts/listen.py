"""listeners.bind-address, wsl.listeners: whether Windows (and the LAN) reaches each
listening socket, why (a typed cause), and the fix.

Facts (shared wsl-networking.md section 4): the NAT-mode localhost relay forwards TCP
only, and only listeners bound to exactly 0.0.0.0, 127.0.0.1, :: or ::1; an IPv6 bind is
reachable from Windows only as [::1]; it listens on Windows loopback, never the LAN.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from wslnet.check.fix import forwards as forward_fix
from wslnet.check.forwarder import ForwardFile
from wslnet.check.model import Finding, Status, fail, finding, info, warn
from wslnet.facts import Problem, procnet, resolv
from wslnet.verdict import Cause, Fix, Listener, Reach, Reachability


def forward_command(proto: str, port: int) -> str:
    """The `wslnet forward` a user runs on Windows to reach this listener: the durable
    form, whose `wsl` target follows the VM's address across `wsl --shutdown`."""
    return f"wslnet forward {'udp/' if proto == 'udp' else ''}{port}"


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
        return own
    if container:
        return _in_container(entry)
    forward = forward_command(entry.proto, port)
    on_windows = "; or forward it from Windows (it follows the VM's address)"
    if mode is None:
        return Reachability("n/a", "not-wsl", "not in WSL: there is no WSL relay to judge", vm)
    if mode == "wsl1":
        return Reachability("yes", "wsl1-shared", "WSL1 shares Windows' network stack", True)
    if mode == "mirrored":
        if entry.family == "ipv6" and not any6:
            why = "mirrored mode reaches Linux over IPv4 only"
            fix = Fix(f"bind 0.0.0.0:{port} or 127.0.0.1:{port}")
            return Reachability("no", "mirrored-ipv4-only", why, False, fix)
        why = "mirrored mode shares localhost (TCP and UDP)"
        return Reachability("yes", "mirrored-shared", why, vm)
    if mode != "nat":
        why = f"networking mode {mode!r} has no localhost relay"
        return Reachability("no", "no-relay-mode", why, vm)
    if entry.proto == "udp":
        where = (
            f"use the VM address ({vm_addrs[0]}:{port})"
            if vm and vm_addrs
            else "bind 0.0.0.0 and use the VM address"
        )
        fix = Fix(
            f"WSL's relay never forwards UDP: {where}, mirrored mode{on_windows}",
            [forward],
            "windows",
        )
        why = "UDP is never forwarded by WSL's localhost relay"
        return Reachability("no", "udp-not-relayed", why, vm, fix)
    if not forwarding:
        fix = Fix(f"remove localhostForwarding=false{on_windows}", [forward], "windows")
        why = "localhostForwarding=false in .wslconfig"
        return Reachability("no", "localhost-forwarding-off", why, vm, fix)
    if any4 or addr == "127.0.0.1":
        why = f"bound to {addr}: WSL's relay forwards 127.0.0.1:{port}"
        return Reachability("yes", "relayed", why, vm)
    if any6 or addr == "::1":
        why = f"bound to {addr}: reachable only as [::1]:{port}, not 127.0.0.1"
        text = f"bind 0.0.0.0:{port} too (or use http://[::1]:{port}){on_windows}"
        return Reachability("ipv6-only", "ipv6-only", why, vm, Fix(text, [forward], "windows"))
    if addr.startswith("127.") or addr.startswith("::ffff:127."):
        why = f"bound to {addr}: the relay forwards only 127.0.0.1, not other 127.x"
        fix = Fix(f"bind 127.0.0.1:{port} (or 0.0.0.0:{port})")
        return Reachability("no", "bound-to-other-loopback", why, False, fix)
    why = f"bound to {addr}: the relay does not forward the eth0 address (#10206)"
    fix = Fix(f"bind 0.0.0.0:{port}{on_windows}", [forward], "windows")
    return Reachability("no", "bound-to-eth0", why, vm, fix)


def wsl_own(
    entry: procnet.SocketEntry, tunnel: Collection[str] = resolv.DEFAULT_TUNNEL
) -> Reachability | None:
    """The verdict on a socket WSL or the distribution runs for itself (not a service
    of the user's, so nothing to reach from Windows), else None."""
    if entry.port == 53 and entry.address in tunnel:
        why = "WSL's DNS tunnel (dnsTunneling): WSL's own, not a service to reach"
        return Reachability("n/a", "wsl-dns-tunnel", why, False)
    if entry.port == 53 and entry.address in resolv.RESOLVED_STUB:
        why = "systemd-resolved's local DNS stub: the distribution's own resolver"
        return Reachability("n/a", "resolved-stub", why, False)
    return None


def _in_container(entry: procnet.SocketEntry) -> Reachability:
    """A container's listener is reached from Windows only through a published port,
    which arrives on the container's own interface, never on its loopback."""
    port = entry.port
    if entry.address.startswith("127.") or entry.address == "::1":
        why = f"bound to {entry.address} inside the container: a published port cannot reach it"
        fix = Fix(f"bind 0.0.0.0:{port} inside the container")
        return Reachability("no", "container-loopback", why, False, fix)
    why = "in a container: Windows reaches it only through a published port"
    fix = Fix(
        f"publish it: docker run -p {port}:{port} (ports: in compose, forwardPorts: [{port}] "
        "in devcontainer.json); Windows then reaches localhost:" + str(port)
    )
    return Reachability("if-published", "container-published", why, False, fix)


# What the Windows forwarder can reach that the relay misses: a listener at the VM's
# address, which is where its `wsl:PORT` target goes (a 127.x other than 127.0.0.1 is not).
_FORWARDABLE: tuple[Cause, ...] = ("udp-not-relayed", "bound-to-eth0", "localhost-forwarding-off")


def through_forwarder(
    r: Reachability, entry: procnet.SocketEntry, file: ForwardFile | None
) -> Reachability:
    """A listener the relay misses, given the forwarder's file on Windows: forwarded
    there already (said, nothing to fix), or the fix gets the action that adds it."""
    if file is None or r.cause not in _FORWARDABLE or not r.vm_address or r.fix is None:
        return r
    proto, port = entry.proto, entry.port
    if (proto, port) in file.configured:
        why = (f"{r.reason}; the wslnet forwarder's file on Windows ({forward_fix.SHOWN}) "
               f"listens on {proto.upper()} port {port}: reached there while it runs")  # fmt: skip
        return Reachability("n/a", "wslnet-configured", why, r.vm_address)
    return replace(r, fix=replace(r.fix, action=forward_fix.add_forward(file, proto, port)))


def judge_all(
    entries: list[procnet.SocketEntry],
    mode: str | None,
    forwarding: bool,
    vm_addrs: list[str],
    container: bool = False,
    owners: dict[int, tuple[int, str]] | None = None,
    tunnel: Collection[str] = resolv.DEFAULT_TUNNEL,
    forwards: Mapping[tuple[str, str, int], tuple[int, int]] | None = None,
    forward_file: ForwardFile | None = None,
) -> list[Listener]:
    """The verdicts on the listening sockets among `entries` (pure); `forwards` maps
    (proto, address, port) to (rule, pid) for the running wslnet forwarders' sockets;
    `forward_file`: the Windows forwarder's config file, for what the relay misses."""
    out: list[Listener] = []
    for e in entries:
        if not e.listening:
            continue
        pid, proc = (owners or {}).get(e.inode, (None, None))
        rule = (forwards or {}).get((e.proto, e.address, e.port))
        r = judge(e, mode, forwarding, vm_addrs, container, tunnel)
        r = through_forwarder(r, e, forward_file)
        if rule is not None:  # a running wslnet forward's: infrastructure, never a problem
            why = f"wslnet forward rule {rule[0]} (pid {rule[1]}) listens here: wslnet's own"
            reach: Reach = r.windows_localhost if r.windows_localhost in _RELAYED else "n/a"
            r = Reachability(reach, "wslnet-forward", why, r.vm_address)
        lan = False  # WSL's relay listens on Windows loopback only
        out.append(
            Listener(
                e.proto, e.family, e.address, e.port, pid, proc,
                r.windows_localhost, r.cause, r.reason, r.vm_address, lan, r.fix,
                rule[0] if rule is not None else None,
            )
        )  # fmt: skip
    out.sort(key=lambda x: (x.port, x.proto, x.family, x.address))
    return out


def _sockets(n: int) -> str:
    return f"{n} listening socket" + ("" if n == 1 else "s")


_RELAYED: tuple[Reach, ...] = ("yes", "ipv6-only")

_LISTENER_STATUS: dict[Reach, Status] = {
    "yes": "ok",
    "ipv6-only": "warn",
    "no": "warn",
    "n/a": "info",
    "if-published": "info",  # a container's: fine once its port is published
}


_REACH_RANK: dict[Reach, int] = {"yes": 0, "ipv6-only": 1, "if-published": 2, "no": 3, "n/a": 4}


def listeners(
    found: list[Listener], problems: list[Problem], port: int | None, mode: str | None
) -> list[Finding]:
    """One finding per listening port (the verdicts on its sockets come from judge)."""
    if port is not None:
        found = [x for x in found if x.port == port]
        if not found:
            return [
                fail(
                    f"Nothing listens on port {port}",
                    detail="start the service, or check the port it really uses (ss -ltnup)",
                )
            ]
    if found and all(x.cause == "not-wsl" for x in found):
        # Outside WSL there is no relay to judge: one line, the sockets as evidence
        # (a container's sockets have verdicts of their own: published or not).
        ports = sorted({f"{x.proto}/{x.port}" for x in found})
        return [
            info(
                f"{_sockets(len(found))} (not in WSL: Windows reachability does not apply)",
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
    for (proto, number), group in groups.items():
        # A forwarder's socket on a user's port is credited to its rule, never as the
        # port's owner; alone, it is wslnet's own (info, nothing to fix).
        ours = [x for x in group if x.wslnet_rule is not None]
        sockets = [x for x in group if x.wslnet_rule is None] or ours
        best = min(group, key=lambda x: _REACH_RANK[x.windows_localhost])
        where = ", ".join(
            f"[{x.address}]:{number}" if ":" in x.address else f"{x.address}:{number}"
            for x in sockets
        )
        owner = next((x for x in sockets if x.process and x.wslnet_rule is None), None)
        who = f" ({owner.process}, pid {owner.pid})" if owner is not None else ""
        if sockets is ours:
            rule = ours[0]
            title = f"{proto} {where}: wslnet forward rule {rule.wslnet_rule}, wslnet's own"
            evidence = rule.as_json()
            findings.append(info(title, detail=rule.reason, evidence=evidence))
            continue
        credit = f", forwarded by wslnet rule {ours[0].wslnet_rule}" if ours else ""
        reach = f"Windows localhost {best.windows_localhost}"
        if best.cause == "wslnet-configured":
            reach = "forwarded by the wslnet forwarder's file on Windows"
        title = f"{proto} {where}{who}{credit}: {reach}"
        evidence = best.as_json()
        if len(sockets) > 1:
            evidence["sockets"] = [x.as_json() for x in sockets]
        status = _LISTENER_STATUS[best.windows_localhost]
        findings.append(finding(status, title, detail=best.reason, fix=best.fix, evidence=evidence))
    findings += [warn("A /proc/net line was unreadable", detail=str(p)) for p in problems]
    return findings or [info("No listening sockets")]
