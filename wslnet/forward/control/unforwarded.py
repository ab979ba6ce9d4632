"""The WSL listeners no rule forwards yet, each with the rule that would (the dashboard's
"forward" button, as VS Code's Ports view offers).

The listeners come from the auto-forward watch when --auto runs (its last snapshot),
else from one `wsl.exe` call made when the page asks, parsed by the same parser.
`unforwarded` decides; `Listeners` only fetches.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from wslnet import system
from wslnet.contract import document
from wslnet.facts import procnet
from wslnet.forward.core.resolve import ResolveError
from wslnet.forward.core.rules import LOOPBACK, WSL, Endpoint
from wslnet.forward.core.server import Forwarder

Source = Literal["auto", "asked", "unavailable"]
ASK_TIMEOUT = 10.0
CACHE = 2.0  # seconds an asked-for snapshot is reused (each wsl.exe call costs)


@dataclass(frozen=True)
class Candidate:
    proto: procnet.Proto
    address: str
    port: int
    rule: str  # what the "forward" button posts


@dataclass(frozen=True)
class Seen:
    """One snapshot of the VM's sockets, and the VM's own addresses then."""

    entries: list[procnet.SocketEntry]
    vm_addrs: set[str]


class Watch(Protocol):
    """The auto-forward watch, as far as this module needs it."""

    seen: Seen | None


def unforwarded(seen: Seen, forwarded: set[tuple[str, int]], target: str) -> list[Candidate]:
    """Listeners a dial to the VM's address reaches (bound to the wildcard or to that
    address) whose (proto, port) no rule targets; one per (proto, port)."""
    out: dict[tuple[str, int], Candidate] = {}
    for e in seen.entries:
        reachable = e.address in ("0.0.0.0", "::") or e.address in seen.vm_addrs
        key = (e.proto, e.port)
        if not e.listening or not reachable or key in forwarded or key in out:
            continue
        listen = Endpoint(LOOPBACK, e.port)
        out[key] = Candidate(e.proto, e.address, e.port, f"{e.proto}/{listen}={target}:{e.port}")
    return sorted(out.values(), key=lambda c: (c.port, c.proto))


class Listeners:
    def __init__(self, fwd: Forwarder) -> None:
        self.fwd = fwd
        self.watch: Watch | None = None  # set when --auto runs
        self.asked: tuple[float, Seen] | None = None

    def forwarded(self) -> set[tuple[str, int]]:
        """(proto, port) of every WSL target a running rule has."""
        return {
            (rs.rule.proto, rs.rule.target.port)
            for rs in self.fwd.table.rules
            if not rs.closing and rs.rule.target.host.split("@")[0] == WSL
        }

    async def document(self) -> dict[str, Any]:
        source: Source = "auto"
        seen = self.watch.seen if self.watch is not None else None
        error = None
        if self.watch is None:
            source = "asked"
            try:
                seen = await self._ask()
            except (OSError, ResolveError, asyncio.TimeoutError) as exc:
                source, error = "unavailable", str(exc) or type(exc).__name__
        found = unforwarded(seen, self.forwarded(), WSL) if seen is not None else []
        return document(source=source, error=error, listeners=[asdict(c) for c in found])

    async def _ask(self) -> Seen:
        now = time.monotonic()
        if self.asked is not None and now - self.asked[0] < CACHE:
            return self.asked[1]
        exe = shutil.which("wsl.exe") or shutil.which("wsl")
        if exe is None:
            raise OSError("wsl.exe not found: WSL listeners are seen from Windows")
        proc = await asyncio.create_subprocess_exec(
            exe, "-e", "sh", "-c", procnet.SNAPSHOT_SCRIPT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL, creationflags=system.no_window(),
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), ASK_TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        parts = procnet.split_sections(out.decode("utf-8", errors="replace"))
        addrs = await self.fwd.resolver.resolve(Endpoint(WSL, 1))
        seen = Seen(procnet.parse_snapshot(parts), {str(a[1][0]) for a in addrs})
        self.asked = (time.monotonic(), seen)
        return seen
