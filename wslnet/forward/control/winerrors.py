"""Why Windows refuses a port, in Windows' words: a listening error explained with the
reserved port ranges (netsh) and the port's owner (netstat, tasklist), read through the
one seam where Windows programs run. Never "root" or "sudo" on Windows."""

from __future__ import annotations

import errno
from collections.abc import Sequence

from wslnet import system
from wslnet.errors import ListenError
from wslnet.facts import windows as win
from wslnet.forward.core.rules import Rule


def explain(exc: ListenError) -> ListenError:
    """The same error with its Windows cause, when Windows' tools can tell it."""
    port = exc.port
    if port is None:
        return exc
    if exc.errno == errno.EACCES:
        code, out, _ = system.windows_exe(
            "netsh.exe", ["interface", "ipv4", "show", "excludedportrange", "protocol=tcp"]
        )
        ranges, _ = win.parse_excluded(out) if code == 0 else ([], [])
        hit = next((r for r in ranges if port in r), None)
        if hit is not None:
            return ListenError(
                f"port {port} is reserved by Windows (range {hit.start}-{hit.end}): as "
                "Administrator run `net stop winnat` then `net start winnat` to free it, or "
                f"`netsh int ipv4 add excludedportrange protocol=tcp startport={port} "
                "numberofports=1` to keep it yours; or pick another port",
                exc.errno,
                port,
            )
    if exc.errno == errno.EADDRINUSE:
        owner = _owner(port)
        if owner is not None and owner[1].lower() == "wslrelay.exe":
            return ListenError(
                f"WSL's relay already forwards port {port} (wslrelay.exe, pid {owner[0]}): "
                "wslnet is not needed for it; to forward it with wslnet instead, turn the "
                "relay off with localhostForwarding=false under [wsl2] in .wslconfig",
                exc.errno,
                port,
            )
        if owner is not None:
            return ListenError(
                f"port {port} is in use by {owner[1]} (pid {owner[0]}): stop it or pick "
                "another port",
                exc.errno,
                port,
            )
    return exc


def _owner(port: int) -> tuple[int, str] | None:
    code, out, _ = system.windows_exe("netstat.exe", ["-ano"])
    sockets, _ = win.parse_netstat(out) if code == 0 else ([], [])
    pid = next((s.pid for s in sockets if s.proto == "tcp" and s.port == port), None)
    if pid is None:
        return None
    code, out, _ = system.windows_exe("tasklist.exe", ["/fo", "csv", "/nh"])
    names, _ = win.parse_tasklist_csv(out) if code == 0 else ({}, [])
    return pid, names.get(pid, "?")


def firewall_hints(rules: Sequence[Rule]) -> list[tuple[str, str]]:
    """(rule, command) for each rule that listens beyond loopback: on Windows it needs an
    inbound firewall rule before LAN clients reach it."""
    return [
        (r.text, win.new_firewall_rule(r.proto, r.listen.port))
        for r in rules
        if not r.listen.loopback
    ]
