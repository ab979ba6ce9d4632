"""What every check may look at: the environment, the options, facts read once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wslnet import listeners as sockets
from wslnet import paths, system
from wslnet.check import forwarder
from wslnet.check.verdicts.config import WslconfigFile
from wslnet.check.verdicts.listen import judge_all
from wslnet.facts import Problem, neigh, route
from wslnet.facts.wslconfig import WslConfig, parse
from wslnet.hostaddr import HostAddress, find_host
from wslnet.verdict import HostPath, Listener
from wslnet.where import Environment

if TYPE_CHECKING:
    from wslnet.check.windows_facts import WindowsFacts, WslFacts

_RELAYED = ("yes", "ipv6-only")  # what WSL's relay listens for on Windows


def host_path(address: str) -> HostPath:
    """Read after a probe, so the kernel's neighbour table has tried the host."""
    routes = system.routes()
    chosen = route.route_for(routes, address)
    defaults = route.default_gateways(routes)
    entries, _ = neigh.parse(system.read_proc("net/arp") or "")
    entry = neigh.lookup(entries, address)
    return HostPath(
        address,
        chosen.interface if chosen else None,
        defaults[0].interface if defaults else None,
        entry.answered if entry is not None else None,
    )


def forwarded_sockets() -> dict[tuple[str, str, int], tuple[int, int]]:
    """(proto, address, port) -> (rule, pid) of every running wslnet forwarder's socket."""
    from wslnet.registry import running

    return {
        (proto, host, port): (rule.id, reg.pid)
        for reg in running()
        for rule in reg.rules
        for proto, (host, port) in ((rule.proto, x) for x in rule.listen)
    }


@dataclass
class Options:
    host_ports: list[int] = field(default_factory=list)
    port: int | None = None
    wslconfig: str | None = None
    probe_timeout: float = 1.0
    raw: bool = True  # --no-raw turns packet-level probes off
    targets: list[str] = field(default_factory=list)  # more path-MTU destinations
    boot: bool = False  # --boot: on Windows, start a stopped distribution to look inside


@dataclass
class Context:
    env: Environment
    options: Options
    _host: HostAddress | None = None
    _wslconfig: tuple[str | None, WslConfig | None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    arp: object | None = None  # the host's ARP answer, once a raw check asked (raw_checks)
    _listeners: tuple[list[Listener], list[Problem]] | None = None
    _windows: WindowsFacts | None = None
    _wsl: WslFacts | None = None
    _profile: tuple[str | None] | None = None  # %UserProfile%, once asked
    _wslconfig_text: str | None = None  # the text read, for --fix's edit of it

    async def windows_profile(self) -> str | None:
        """%UserProfile% as a Linux path, asked of Windows (cmd.exe) once per run."""
        async with self.lock("profile"):
            if self._profile is None:
                self._profile = (await asyncio.to_thread(system.windows_userprofile),)
            return self._profile[0]

    def lock(self, name: str) -> asyncio.Lock:
        """One lock per fact, so a fact several checks need is gathered once."""
        return self._locks.setdefault(name, asyncio.Lock())

    def host(self) -> HostAddress:
        if self._host is None:
            self._host = find_host(self.env)
        return self._host

    async def wslconfig(self) -> tuple[str | None, WslConfig | None]:
        """(path, parsed .wslconfig), found once: --wslconfig, or %UserProfile% via wslvar."""
        async with self._lock:
            if self._wslconfig is None:
                path = self.options.wslconfig
                if path is None and self.env.kind == "windows":
                    profile = system.env("USERPROFILE")
                    path = f"{profile}\\.wslconfig" if profile else None
                elif path is None and self.env.in_wsl:
                    profile = await self.windows_profile()
                    path = f"{profile}/.wslconfig" if profile else None
                text = system.read_text(path) if path else None
                self._wslconfig_text = text
                self._wslconfig = (path, parse(text) if text is not None else None)
            return self._wslconfig

    async def wslconfig_file(self) -> WslconfigFile | None:
        """.wslconfig as read, for the edit --fix may make of it (None: no file read)."""
        path, _ = await self.wslconfig()
        text = self._wslconfig_text
        if path is None or text is None:
            return None
        mode = self.env.networking_mode if self.env.in_wsl else None
        return WslconfigFile(path, text, mode, self.env.kind == "windows")

    async def listeners(self) -> tuple[list[Listener], list[Problem]]:
        """WSL's listening sockets with their verdicts, read once per run: from /proc
        here, or on Windows through wsl.exe when the default distribution runs."""
        async with self.lock("listeners"):
            if self._listeners is None:
                in_wsl = self.env.in_wsl or self.env.kind == "windows"
                _, conf = await self.wslconfig() if in_wsl else (None, None)
                off = conf is not None and conf.flag("wsl2.localhostForwarding") is False
                file = await self.forward_file() if in_wsl else None
                if self.env.kind == "windows":
                    wsl = await self.wsl()
                    found = judge_all(wsl.entries, wsl.mode or "nat", not off, wsl.vm_addresses,
                                      forward_file=file)  # fmt: skip
                    self._listeners = (found, [])
                else:
                    entries, problems = sockets.read_sockets()
                    mode = self.env.networking_mode if self.env.in_wsl else None
                    container = self.env.kind == "container"
                    env = self.env
                    owners = system.socket_owners()
                    found = judge_all(
                        entries, mode, not off, env.vm_addresses, container, owners,
                        env.dns_tunnel, forwarded_sockets(), file,
                    )  # fmt: skip
                    self._listeners = (found, problems)
            return self._listeners

    async def wsl(self) -> WslFacts:
        """WSL as Windows sees it (wsl.exe), gathered once; never boots it unless --boot."""
        from wslnet.check import windows_facts

        async with self.lock("wsl"):
            if self._wsl is None:
                self._wsl = await windows_facts.gather_wsl(self.options.boot)
            return self._wsl

    async def forward_ports(self) -> list[tuple[str, int]]:
        return [(x.proto, x.port) for x in await self.forward_listens() if x.port]

    async def forward_config(self) -> Path | None:
        """The Windows forwarder's config file (%APPDATA%\\wslnet\\forward.toml, seen
        from WSL through /mnt/c); None when the Windows user folder is not known."""
        if self.env.kind == "windows":
            return paths.forward_config(windows=True)
        profile = await self.windows_profile()
        return paths.forward_config_of(Path(profile)) if profile else None

    async def forward_listens(self) -> list[forwarder.ForwardListen]:
        """Where a configured wslnet forwarder on Windows listens: its config file."""
        return await asyncio.to_thread(forwarder.listens, await self.forward_config())

    async def forward_file(self) -> forwarder.ForwardFile | None:
        """That file as read, for the fix that adds a forward to it."""
        path = await self.forward_config()
        windows = self.env.kind == "windows"
        return await asyncio.to_thread(forwarder.forward_file, path, windows)

    async def vm_addresses(self) -> list[str]:
        if self.env.kind == "windows":
            return (await self.wsl()).vm_addresses
        return self.env.vm_addresses

    async def relay_ports(self) -> list[int]:
        """The TCP ports WSL's relay should forward to Windows localhost (NAT mode)."""
        found, _ = await self.listeners()
        ports = {x.port for x in found if x.proto == "tcp" and x.windows_localhost in _RELAYED}
        if self.options.port is not None:
            ports &= {self.options.port}
        return sorted(ports)

    async def windows(self) -> WindowsFacts:
        """The Windows side's facts (through interop from WSL), gathered once per run."""
        from wslnet.check import windows_facts

        async with self.lock("windows"):
            if self._windows is None:
                listens = await self.forward_listens()
                lan = [(x.proto, x.port) for x in listens if not x.loopback]
                self._windows = await windows_facts.gather(await self.relay_ports(), lan)
            return self._windows

    def wslconfig_seen(self) -> tuple[str | None, WslConfig | None]:
        """(path, .wslconfig) as the checks read them ((None, None) if no check did)."""
        return self._wslconfig if self._wslconfig is not None else (None, None)

    def wslconf(self) -> WslConfig | None:
        text = system.read_text("/etc/wsl.conf")
        return parse(text, "wslconf") if text is not None else None
