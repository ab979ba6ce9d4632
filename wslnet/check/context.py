"""What every check may look at: the environment, the options, facts read once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from wslnet import system
from wslnet.facts.wslconfig import WslConfig, parse
from wslnet.hostaddr import HostAddress, find_host
from wslnet.where import Environment


@dataclass
class Options:
    host_ports: list[int] = field(default_factory=list)
    port: int | None = None
    wslconfig: str | None = None
    probe_timeout: float = 1.0
    raw: bool = True  # --no-raw turns packet-level probes off
    targets: list[str] = field(default_factory=list)  # more path-MTU destinations


@dataclass
class Context:
    env: Environment
    options: Options
    _host: HostAddress | None = None
    _wslconfig: tuple[str | None, WslConfig | None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def host(self) -> HostAddress:
        if self._host is None:
            self._host = find_host(self.env)
        return self._host

    async def wslconfig(self) -> tuple[str | None, WslConfig | None]:
        """(path, parsed .wslconfig), found once: --wslconfig, or %UserProfile% via wslvar."""
        async with self._lock:
            if self._wslconfig is None:
                path = self.options.wslconfig
                if path is None and self.env.in_wsl:
                    profile = await asyncio.to_thread(system.windows_userprofile)
                    path = f"{profile}/.wslconfig" if profile else None
                text = system.read_text(path) if path else None
                self._wslconfig = (path, parse(text) if text is not None else None)
            return self._wslconfig

    def wslconf(self) -> WslConfig | None:
        text = system.read_text("/etc/wsl.conf")
        return parse(text, "wslconf") if text is not None else None
