"""What every check may look at: the environment, the options, facts read once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wslnet import system
from wslnet.facts import Problem, neigh, route
from wslnet.facts.wslconfig import WslConfig, parse
from wslnet.hostaddr import HostAddress, find_host
from wslnet.listeners import Listener, collect, from_entries
from wslnet.where import Environment

if TYPE_CHECKING:
    from wslnet.check.windows_facts import WindowsFacts, WslFacts
    from wslnet.forward.core.rules import Rule

_RELAYED = ("yes", "ipv6-only")  # what WSL's relay listens for on Windows


@dataclass(frozen=True)
class HostPath:
    """How packets to the host leave here, and whether it answered ARP: the facts that
    tell a firewall's silence from a host that is gone or a route that goes elsewhere."""

    address: str
    interface: str | None  # the route's interface; None: no route at all
    expected: str | None  # the default route's interface (the WSL switch in NAT mode)
    answered_arp: bool | None  # None: no neighbour entry (never tried, or not on-link)

    @property
    def shadowed(self) -> bool:
        """A more specific route (a Docker bridge, a VPN) takes the host's packets."""
        return None not in (self.interface, self.expected) and self.interface != self.expected


def host_path(address: str) -> HostPath:
    """Read after a probe, so the kernel's neighbour table has tried the host."""
    routes, _ = route.parse_proc_route(system.read_text("/proc/net/route") or "")
    chosen = route.route_for(routes, address)
    defaults = route.default_gateways(routes)
    entries, _ = neigh.parse(system.read_text("/proc/net/arp") or "")
    entry = neigh.lookup(entries, address)
    return HostPath(
        address,
        chosen.interface if chosen else None,
        defaults[0].interface if defaults else None,
        entry.answered if entry is not None else None,
    )


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
                    profile = await asyncio.to_thread(system.windows_userprofile)
                    path = f"{profile}/.wslconfig" if profile else None
                text = system.read_text(path) if path else None
                self._wslconfig = (path, parse(text) if text is not None else None)
            return self._wslconfig

    async def listeners(self) -> tuple[list[Listener], list[Problem]]:
        """WSL's listening sockets with their verdicts, read once per run: from /proc
        here, or on Windows through wsl.exe when the default distribution runs."""
        async with self.lock("listeners"):
            if self._listeners is None:
                in_wsl = self.env.in_wsl or self.env.kind == "windows"
                _, conf = await self.wslconfig() if in_wsl else (None, None)
                off = conf is not None and conf.flag("wsl2.localhostForwarding") is False
                if self.env.kind == "windows":
                    wsl = await self.wsl()
                    found = from_entries(wsl.entries, wsl.mode or "nat", not off, wsl.vm_addresses)
                    self._listeners = (found, [])
                else:
                    mode = self.env.networking_mode if self.env.in_wsl else None
                    container = self.env.kind == "container"
                    vm = self.env.vm_addresses
                    tunnel = self.env.dns_tunnel
                    self._listeners = collect(mode, not off, vm, container, tunnel)
            return self._listeners

    async def wsl(self) -> WslFacts:
        """WSL as Windows sees it (wsl.exe), gathered once; never boots it unless --boot."""
        from wslnet.check import windows_facts

        async with self.lock("wsl"):
            if self._wsl is None:
                self._wsl = await windows_facts.gather_wsl(self.options.boot)
            return self._wsl

    async def forward_ports(self) -> list[tuple[str, int]]:
        return [(r.proto, r.listen.port) for r in await self.forward_rules() if r.listen.port]

    async def forward_rules(self) -> list[Rule]:
        """The rules of a configured wslnet forwarder on Windows: its config file
        (%APPDATA%\\wslnet\\forward.toml, seen from WSL through /mnt/c)."""
        from pathlib import Path

        from wslnet.errors import UsageError
        from wslnet.forward.control import configfile

        if self.env.kind == "windows":
            path: Path | None = configfile.default_path(windows=True)
        else:
            profile = await asyncio.to_thread(system.windows_userprofile)
            path = Path(profile) / "AppData/Roaming/wslnet/forward.toml" if profile else None
        if path is None or not path.is_file():
            return []
        try:
            conf = await asyncio.to_thread(configfile.load, path)
        except UsageError:
            return []  # the forwarder itself says what is wrong with its file
        return list(conf.rules)

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
                rules = await self.forward_rules()
                lan = [(r.proto, r.listen.port) for r in rules if not r.listen.loopback]
                self._windows = await windows_facts.gather(await self.relay_ports(), lan)
            return self._windows

    def wslconfig_read(self) -> WslConfig | None:
        """The .wslconfig as the checks read it (None if no check did, or none exists)."""
        return self._wslconfig[1] if self._wslconfig is not None else None

    def wslconf(self) -> WslConfig | None:
        text = system.read_text("/etc/wsl.conf")
        return parse(text, "wslconf") if text is not None else None
