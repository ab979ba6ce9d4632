"""This system's listening sockets, read from /proc/net, and `wslnet listeners`' table.

Whether Windows reaches each one is a verdict: check/verdicts/listen.py makes it, and
check/context.py (Context.listeners) is the one path that gathers and judges them for
`wslnet check` and `wslnet listeners` alike.
"""

from __future__ import annotations

from wslnet import system
from wslnet.facts import Problem, procnet
from wslnet.verdict import Listener


def read_sockets() -> tuple[list[procnet.SocketEntry], list[Problem]]:
    """Every socket in /proc/net/{tcp,tcp6,udp,udp6}, and the lines that did not parse."""
    entries: list[procnet.SocketEntry] = []
    problems: list[Problem] = []
    for name, (proto, family) in procnet.FILES.items():
        text = system.read_proc(f"net/{name}")
        if text is None:
            continue
        found, probs = procnet.parse(text, proto, family)
        entries += found
        problems += [Problem(p.line, p.text, f"/proc/net/{name}: {p.why}") for p in probs]
    return entries, problems


def read_tcp_listeners() -> list[procnet.SocketEntry]:
    """This namespace's listening TCP sockets, read without making the kernel generate
    the rest of the table (procnet.in_listening_part): what the forwarder needs, cheap
    enough on a host with 100,000 connections in TIME_WAIT."""
    entries: list[procnet.SocketEntry] = []
    for name, (proto, family) in procnet.FILES.items():
        if proto != "tcp":
            continue
        text = system.read_proc_while(f"net/{name}", procnet.in_listening_part)
        if text is not None:
            entries += [e for e in procnet.parse(text, proto, family)[0] if e.listening]
    return entries


def render_table(found: list[Listener], width: int | None = None) -> str:
    """`wslnet listeners` for people: one socket a line, its WHY wrapped to `width` (None:
    unwrapped) under its own column, or below the row where that column would be too
    narrow; words are never cut."""
    import textwrap

    column = 6 + 28 + 20 + 13
    below = width is not None and width - column < 30
    head = f"{'PROTO':<6}{'ADDRESS':<28}{'PROCESS':<20}{'WINDOWS':<13}"
    lines = [head.rstrip() if below else head + "WHY"]
    indent = " " * (6 if below else column)
    for x in found:
        where = f"[{x.address}]:{x.port}" if ":" in x.address else f"{x.address}:{x.port}"
        proto = x.proto + ("6" if x.family == "ipv6" else "")
        who = f"{x.process}/{x.pid}" if x.process else "-"
        row = f"{proto:<6}{where:<27} {who:<19} {x.windows_localhost:<13}"
        if width is None:
            lines.append(row + x.reason)
            continue
        first = indent if below else row
        why = textwrap.wrap(
            x.reason, width, initial_indent=first, subsequent_indent=indent,
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip
        lines += [row.rstrip(), *why] if below else why or [row.rstrip()]
    return "\n".join(lines)
