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

from wslnet import system
from wslnet.facts import procnet
from wslnet.forward.control.unforwarded import Seen
from wslnet.forward.core.config import AutoConfig
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import ResolveError
from wslnet.forward.core.rules import LOOPBACK, WSL, Endpoint, Network, Proto, Rule
from wslnet.forward.core.server import Forwarder

POLL = 0.25
HEALTHY_RUN = 60.0  # seconds of wsl.exe running that reset the restart back-off
_SCRIPT = f"while :; do {procnet.SNAPSHOT_SCRIPT}; echo '@@ end'; sleep {POLL}; done"


def wanted(
    entries: list[procnet.SocketEntry], vm_addrs: set[str], lan: bool
) -> set[tuple[Proto, int]]:
    """(proto, port) pairs the relay leaves unreachable (or, with lan, all TCP too)."""
    out: set[tuple[Proto, int]] = set()
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
        config: AutoConfig,
        allow: tuple[Network, ...] | None,
    ) -> None:
        self.fwd = fwd
        self.log = log
        self.config = config
        self.distro = config.distro
        self.target_host = f"{WSL}@{config.distro}" if config.distro else WSL
        self.allow = allow
        self.current: set[tuple[Proto, int]] = set()
        self.proc: asyncio.subprocess.Process | None = None
        self.seen: Seen | None = None  # the last snapshot, for the dashboard

    def rule(self, proto: Proto, port: int) -> Rule:
        listen = Endpoint("0.0.0.0" if self.config.lan else LOOPBACK, port)
        text = f"{proto}/{listen}={self.target_host}:{port}"
        return Rule(proto, listen, Endpoint(self.target_host, port), text, self.allow)

    async def run(self) -> None:
        exe = shutil.which("wsl.exe") or shutil.which("wsl")
        if exe is None:
            self.log(
                "error", "auto-failed", msg="wsl.exe not found: --auto watches WSL from Windows"
            )
            return
        args = (["-d", self.distro] if self.distro else []) + ["-e", "sh", "-c", _SCRIPT]
        backoff = 1.0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.proc = await asyncio.create_subprocess_exec(
                exe,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                stdin=asyncio.subprocess.DEVNULL,
                creationflags=system.no_window(),
            )
            try:
                await self._read(self.proc)
            finally:
                if self.proc.returncode is None:
                    self.proc.kill()
                    await self.proc.wait()
            self.log("warning", "auto-restart", msg=f"wsl.exe ended ({self.proc.returncode})")
            if loop.time() - started > HEALTHY_RUN:
                backoff = 1.0  # it ran fine for a while: this is a new failure, not a loop
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
        entries = procnet.parse_snapshot(parts)
        try:
            vm = {a[1][0] for a in await self.fwd.resolver.resolve(Endpoint(self.target_host, 1))}
        except ResolveError as exc:
            self.log("warning", "auto-wait", msg=str(exc))
            return
        self.seen = Seen(entries, vm)
        lan = self.config.lan
        want = {(p, port) for p, port in wanted(entries, vm, lan) if self.config.keeps(port)}
        if want == self.current:
            return
        added, removed = sorted(want - self.current), sorted(self.current - want)
        self.current = want
        await self.fwd.table.apply([self.rule(p, port) for p, port in sorted(want)], "auto")
        # Logged once done: a script that waits for the line may connect at once.
        for proto, port in added:
            self.log("info", "auto-add", proto=proto, port=port)
        for proto, port in removed:
            self.log("info", "auto-remove", proto=proto, port=port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
