"""The network as a picture, at the top of `wslnet check` for people (never in --json):
the Windows host, the link, the VM, and one line per listening port with the path a
Windows client takes and its verdict. Built from the findings alone (pure), so it
always agrees with them; fits the width it is given; ASCII where the terminal cannot
show box drawing; at most MAX_PORTS lines, problems first, then a count."""

from __future__ import annotations

from dataclasses import dataclass

import click

from wslnet.check.model import Finding
from wslnet.verdict import CAUSES, Cause
from wslnet.where import Environment

MAX_PORTS = 12


@dataclass(frozen=True)
class Glyphs:
    to: str
    blocked: str
    link: str
    own: str
    ellipsis: str


UNICODE = Glyphs("─▶", "─╳", "═══", "·", "…")
ASCII = Glyphs("->", "-x", "===", ".", "...")


# Why Windows cannot reach a port, in a few words (the finding below says it all);
# {addr} is the bound address.
_BLOCKED: dict[Cause, str] = {
    "udp-not-relayed": "UDP is not relayed",
    "localhost-forwarding-off": "localhostForwarding=false",
    "bound-to-other-loopback": "bound to {addr} only",
    "container-loopback": "bound to {addr} only",
    "mirrored-ipv4-only": "IPv6 only, mirrored mode is IPv4",
    "bound-to-eth0": "bound to eth0 only",
    "no-relay-mode": "no localhost relay in this mode",
}
# What a socket WSL or the distribution runs for itself is.
_OWN: dict[Cause, str] = {
    "wsl-dns-tunnel": "WSL's DNS tunnel (dnsTunneling)",
    "resolved-stub": "systemd-resolved's local DNS stub",
    "not-wsl": "not in WSL",
}


def _words(table: dict[Cause, str], ev: dict[str, object], default: str) -> str:
    """The table's words for the evidence's cause (a finding without one: `default`)."""
    cause = next((c for c in CAUSES if c == ev.get("cause")), None)
    return table.get(cause, default) if cause is not None else default


def _port_line(ev: dict[str, object], mode: str | None, g: Glyphs) -> tuple[int, str]:
    """(rank: problems first, the line) for one listener finding's evidence."""
    addr, port = str(ev.get("address")), ev.get("port")
    where = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    proc = f" ({ev['process']})" if ev.get("process") else ""
    proto = "udp " if ev.get("proto") == "udp" else ""
    reach = ev.get("windows_localhost")
    if reach == "n/a":
        return 3, f"  {g.own} {proto}{where}{proc}: {_words(_OWN, ev, 'not for Windows')}"
    if reach == "yes":
        via = "shared localhost" if mode == "mirrored" else "relay"
        return 2, f"  {proto}localhost:{port} {g.to} {via} {g.to} {where}{proc} ok"
    if reach == "if-published":
        return 1, f"  {proto}localhost:{port} {g.to} docker -p {g.to} {where}{proc} if published"
    if reach == "ipv6-only":
        return (
            0,
            f"  {proto}[::1]:{port} {g.to} relay {g.to} {where}{proc}: not as 127.0.0.1, fix below",
        )
    why = _words(_BLOCKED, ev, "not reached").format(addr=addr)
    return 0, f"  {proto}localhost:{port} {g.blocked} {where}{proc}: {why}, fix below"


def _fit(line: str, width: int, g: Glyphs) -> str:
    return line if len(line) <= width else line[: width - len(g.ellipsis)] + g.ellipsis


# Port lines by rank: a problem, a maybe, fine, not Windows' business.
_RANK_COLORS = ("red", "yellow", "green", None)


def picture(
    env: Environment,
    findings: list[Finding],
    width: int = 80,
    ascii: bool = False,
    color: bool = False,
) -> str:
    g = ASCII if ascii else UNICODE
    host_addr = next(
        (
            str(f.evidence["address"])
            for f in findings
            if f.id == "host.address" and f.status == "ok"
        ),
        "?",
    )
    vm = env.vm_addresses[0] if env.vm_addresses else "?"
    mode = env.networking_mode
    distro = f" ({env.distro})" if env.distro else ""
    if env.kind == "windows":
        head = f"Windows (this machine) {g.link} WSL"
    elif mode == "mirrored":
        head = f"Windows {g.link} mirrored: one localhost {g.link} WSL{distro}"
    elif mode == "wsl1":
        head = f"Windows {g.link} WSL1: one network stack {g.link} WSL{distro}"
    elif env.in_wsl:
        link = f"{g.link} {(mode or '?').upper()} {g.link}"
        head = f"Windows host {host_addr} {link} WSL VM {vm}{distro}"
    else:
        head = f"{env.kind}: not WSL"
    ports = [f for f in findings if f.id in ("listeners.bind-address", "wsl.listeners")]
    rows = sorted(
        (_port_line(f.evidence, mode, g) for f in ports if "port" in f.evidence),
        key=lambda r: r[0],
    )
    lines: list[tuple[int, str]] = [(3, head), *rows[:MAX_PORTS]]
    if len(rows) > MAX_PORTS:
        lines.append((3, f"  {g.ellipsis} and {len(rows) - MAX_PORTS} more ports (findings below)"))
    if not rows:
        lines.append((3, "  (no listening ports)"))
    out = []
    for rank, line in lines:
        fitted = _fit(line, width, g)  # before styling: escape codes take no columns
        hue = _RANK_COLORS[rank] if color else None
        out.append(click.style(fitted, fg=hue) if hue else fitted)
    return "\n".join(out)
