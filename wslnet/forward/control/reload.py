"""Reloading the config file's rules: on change (a watcher), on SIGHUP, from the API.

An invalid file changes nothing: the running rules stay and the reason is logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from wslnet.errors import UsageError
from wslnet.forward.control.configfile import load
from wslnet.forward.core.server import Forwarder


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    message: str


class Reloader:
    def __init__(self, fwd: Forwarder, path: Path | None) -> None:
        self.fwd = fwd
        self.path = path
        # Taken now, before `started` is logged: a rewrite that follows that line must be
        # seen as a change, however late the watcher's task first runs.
        self._last = self._stamp()

    def _stamp(self) -> tuple[float, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()  # stat, never open: a FIFO put there cannot block it
        except (OSError, ValueError):
            return None
        return st.st_mtime, st.st_size

    async def reload(self) -> ReloadResult:
        """Never raises: a failure of any kind is one `reload-rejected` line."""
        try:
            return await self._reload()
        except Exception as exc:
            return self._rejected(f"{self.path}: {type(exc).__name__}: {exc}")

    async def _reload(self) -> ReloadResult:
        if self.path is None:
            return ReloadResult(False, "no config file in use (--config)")
        fwd = self.fwd
        try:
            # Off the loop: a slow disk or a hostile file must not stall forwarding.
            conf = await asyncio.to_thread(load, self.path)
            for rule in conf.rules:
                fwd.table.admit(rule)  # a rule beyond loopback must say who may connect
        except UsageError as exc:
            return self._rejected(exc.message)
        await fwd.table.apply(conf.rules, "config")
        n = fwd.table.count("config")
        fwd.log("info", "reloaded", config=str(self.path), rules=n)
        return ReloadResult(True, f"{n} rules from {self.path}")

    def _rejected(self, why: str) -> ReloadResult:
        self.fwd.log("error", "reload-rejected", msg=why)
        return ReloadResult(False, why)

    async def watch(self, every: float = 1.0) -> None:
        """Reloads when the file changes (its mtime or size)."""
        if self.path is None:
            return
        while True:
            await asyncio.sleep(every)
            now = self._stamp()
            if now != self._last and now is not None:
                self._last = now
                await self.reload()  # never raises: the watcher outlives any bad rewrite
