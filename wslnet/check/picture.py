"""The network as a picture, at the top of `wslnet check` for people (never in --json):
the Windows host, the link, the VM, and one line per listening port with the path a
Windows client takes and its verdict. Built from the findings alone (pure), so it
always agrees with them; wraps to the width it is given, never dropping a verdict; ASCII
where the terminal cannot show box drawing; at most MAX_PORTS ports, problems first."""

from __future__ import annotations

import textwrap
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
    broken: str
    own: str
    ellipsis: str


UNICODE = Glyphs("─▶", "─╳", "═══", "═╳═", "·", "…")
ASCII = Glyphs("->", "-x", "===", "=x=", ".", "...")

# The checks whose findings the picture is drawn from: a run without them draws nothing
# rather than a "?" or "(no listening ports)" that only means "not looked at".
_PORTS = ("listeners.bind-address", "wsl.listeners")
_LINK = ("host.address", "raw.host")  # the host-VM link, by their verdicts


def drawable(env: Environment, selected: set[str]) -> bool:
    """Whether a run of the `selected` check ids gathers what the picture shows."""
    if not selected & {"listeners.bind-address" if env.kind != "windows" else "wsl.listeners"}:
        return False
    nat = env.in_wsl and env.networking_mode not in ("mirrored", "wsl1")
    return not nat or "host.address" in selected


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
    "wslnet-forward": "wslnet forward's own",
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


def _count(listed: object) -> int:
    return len(listed) if isinstance(listed, list) else 0


_LINK_WORDS = {"host.address": "no host found", "raw.host": "the host does not answer"}


def _fit(line: str, width: int) -> list[str]:
    """The line in pieces that fit `width`, words whole, continued under a deeper indent:
    the verdict at its end is never cut off."""
    if len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.wrap(
        line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


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
        broken = next((f for f in findings if f.id in _LINK and f.status == "fail"), None)
        bar = g.broken if broken else g.link
        link = f"{bar} {(mode or '?').upper()} {bar}"
        head = f"Windows host {host_addr} {link} WSL VM {vm}{distro}"
        if broken is not None:
            head += f": {_LINK_WORDS[broken.id]}, fix below"
    else:
        head = f"{env.kind}: not WSL"
    ports = [f for f in findings if f.id in _PORTS]
    rows = sorted(
        (_port_line(f.evidence, mode, g) for f in ports if "port" in f.evidence),
        key=lambda r: r[0],
    )
    lines: list[tuple[int, str]] = [(3, head), *rows[:MAX_PORTS]]
    if len(rows) > MAX_PORTS:
        lines.append((3, f"  {g.ellipsis} and {len(rows) - MAX_PORTS} more ports (findings below)"))
    if not rows:
        sockets = sum(_count(f.evidence.get("listeners")) for f in ports)
        plural = "" if sockets == 1 else "s"
        empty = f"  {sockets} listening socket{plural}, not for Windows" if sockets else ""
        lines.append((3, empty or "  (no listening ports)"))
    out = []
    for rank, line in lines:
        hue = _RANK_COLORS[rank] if color else None
        for piece in _fit(line, width):  # before styling: escape codes take no columns
            out.append(click.style(piece, fg=hue) if hue else piece)
    return "\n".join(out)
