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


def render_table(found: list[Listener]) -> str:
    """`wslnet listeners` for people: one line per socket."""
    lines = [f"{'PROTO':<6}{'ADDRESS':<28}{'PROCESS':<20}{'WINDOWS':<11}WHY"]
    for x in found:
        where = f"[{x.address}]:{x.port}" if ":" in x.address else f"{x.address}:{x.port}"
        proto = x.proto + ("6" if x.family == "ipv6" else "")
        who = f"{x.process}/{x.pid}" if x.process else "-"
        lines.append(f"{proto:<6}{where:<28}{who:<20}{x.windows_localhost:<11}{x.reason}")
    return "\n".join(lines)
