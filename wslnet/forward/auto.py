"""Auto-forward: watch the listeners inside WSL and forward what WSL's relay does not.

One long-lived `wsl.exe` child prints /proc/net/{tcp,tcp6,udp,udp6} every quarter
second (not a new process per poll); each snapshot is parsed with the parser of
`wslnet listeners`. Forwarded: UDP listeners (the relay never forwards UDP) and TCP
listeners bound to the VM's own address (the relay skips them, #10206); with --lan,
also TCP listeners on any address, exposed beyond loopback.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass

from wslnet.errors import UsageError
from wslnet.facts import procnet
from wslnet.forward.log import EventLog
from wslnet.forward.resolve import ResolveError
from wslnet.forward.rules import LOOPBACK, WSL, Endpoint, Rule
from wslnet.forward.server import Forwarder

FILES = {
    "tcp": ("tcp", "ipv4"),
    "tcp6": ("tcp", "ipv6"),
    "udp": ("udp", "ipv4"),
    "udp6": ("udp", "ipv6"),
}
POLL = 0.25
_SCRIPT = (
    'while :; do for f in tcp tcp6 udp udp6; do echo "@@ $f"; cat /proc/net/$f 2>/dev/null;'
    f" done; echo '@@ end'; sleep {POLL}; done"
)


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high


def parse_ports(text: str, option: str) -> list[PortRange]:
    """`3000-9999`, `22,5432` or a mix."""
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            lo, hi = int(low), int(high or low)
        except ValueError:
            raise UsageError(f"{option} {text!r}: expected ports such as 3000-9999,22") from None
        if not (1 <= lo <= hi <= 65535):
            raise UsageError(f"{option} {text!r}: ports run from 1 to 65535, low-high")
        ranges.append(PortRange(lo, hi))
    return ranges


def wanted(
    entries: list[procnet.SocketEntry], vm_addrs: set[str], lan: bool
) -> set[tuple[str, int]]:
    """(proto, port) pairs the relay leaves unreachable (or, with lan, all TCP too)."""
    out = set()
    for e in entries:
        if not e.listening:
            continue
        anyaddr = e.address in ("0.0.0.0", "::")
        if e.proto == "udp" and (anyaddr or e.address in vm_addrs):
            out.add(("udp", e.port))
        elif e.proto == "tcp" and (e.address in vm_addrs or (lan and anyaddr)):
            out.add(("tcp", e.port))
    return out


class AutoForward:
    def __init__(
        self,
        fwd: Forwarder,
        log: EventLog,
        distro: str | None,
        include: list[PortRange],
        exclude: list[PortRange],
        lan: bool,
        allow: tuple[str, ...] | None,
    ) -> None:
        self.fwd = fwd
        self.log = log
        self.target_host = f"{WSL}@{distro}" if distro else WSL
        self.distro = distro
        self.include, self.exclude = include, exclude
        self.lan = lan
        self.allow = allow
        self.current: set[tuple[str, int]] = set()
        self.proc: asyncio.subprocess.Process | None = None

    def _rule(self, proto: str, port: int) -> Rule:
        listen = Endpoint("0.0.0.0" if self.lan else LOOPBACK, port)
        text = f"{proto}/{listen}={self.target_host}:{port}"
        return Rule(
            "udp" if proto == "udp" else "tcp",
            listen,
            Endpoint(self.target_host, port),
            text,
            self.allow,
        )

    def _keep(self, port: int) -> bool:
        if self.include and not any(port in r for r in self.include):
            return False
        return not any(port in r for r in self.exclude)

    async def run(self) -> None:
        exe = shutil.which("wsl.exe") or shutil.which("wsl")
        if exe is None:
            self.log(
                "error", "auto-failed", msg="wsl.exe not found: --auto watches WSL from Windows"
            )
            return
        args = (["-d", self.distro] if self.distro else []) + ["-e", "sh", "-c", _SCRIPT]
        backoff = 1.0
        while True:
            self.proc = await asyncio.create_subprocess_exec(
                exe,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                stdin=asyncio.subprocess.DEVNULL,
            )
            try:
                await self._read(self.proc)
            finally:
                if self.proc.returncode is None:
                    self.proc.kill()
                    await self.proc.wait()
            self.log("warning", "auto-restart", msg=f"wsl.exe ended ({self.proc.returncode})")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        name: str | None = None
        parts: dict[str, list[str]] = {}
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("@@ "):
                name = line[3:].strip()
                if name == "end":
                    await self._snapshot(parts)
                    parts, name = {}, None
                else:
                    parts[name] = []
            elif name in parts:
                parts[name].append(line)

    async def _snapshot(self, parts: dict[str, list[str]]) -> None:
        entries: list[procnet.SocketEntry] = []
        for fname, lines in parts.items():
            if fname in FILES:
                proto, family = FILES[fname]
                found, _ = procnet.parse("\n".join(lines), proto, family)  # type: ignore[arg-type]
                entries += found
        try:
            vm = {a[1][0] for a in await self.fwd.resolver.resolve(Endpoint(self.target_host, 1))}
        except ResolveError as exc:
            self.log("warning", "auto-wait", msg=str(exc))
            return
        want = {(p, port) for p, port in wanted(entries, vm, self.lan) if self._keep(port)}
        if want == self.current:
            return
        added, removed = sorted(want - self.current), sorted(self.current - want)
        self.current = want
        await self.fwd.apply([self._rule(p, port) for p, port in sorted(want)], "auto")
        # Logged once done: a script that waits for the line may connect at once.
        for proto, port in added:
            self.log("info", "auto-add", proto=proto, port=port)
        for proto, port in removed:
            self.log("info", "auto-remove", proto=proto, port=port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
