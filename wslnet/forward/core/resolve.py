"""Target addresses: IP literals as they are, host names through a short-lived cache."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable

from wslnet.forward.core.rules import HOST, WSL, Endpoint
from wslnet.forward.data.address import Address, from_getaddrinfo, ip_literal, with_port


class ResolveError(Exception):
    pass


class Resolver:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ttl: float = 30.0,
        on_change: Callable[[Endpoint, list[Address], list[Address]], None] | None = None,
        boot: bool = False,
    ) -> None:
        self.loop = loop
        self.boot = boot  # may a lookup of `wsl` start a stopped distribution?
        self.ttl = ttl  # names (and the VM's address) are asked again this often
        self.on_change = on_change
        self._cache: dict[Endpoint, tuple[float, list[Address]]] = {}
        self._last: dict[Endpoint, list[Address]] = {}
        self.resolved_at: dict[Endpoint, float] = {}
        self._inflight: dict[Endpoint, asyncio.Future[list[Address]]] = {}

    @staticmethod
    def _key(target: Endpoint) -> Endpoint:
        # One lookup per name, whatever the port: `wsl` costs a wsl.exe run.
        return Endpoint(target.host, 0)

    @staticmethod
    def _with_port(addrs: list[Address], port: int) -> list[Address]:
        return [(family, with_port(sockaddr, port)) for family, sockaddr in addrs]

    def cached(self, target: Endpoint) -> list[Address] | None:
        """The addresses known without asking anyone: an IP literal, or a fresh cache entry."""
        hit = self._cache.get(target)
        if hit is not None and hit[0] < 0:
            return hit[1]
        hit = self._cache.get(self._key(target))
        if hit is not None and hit[0] > time.monotonic():
            return self._with_port(hit[1], target.port)
        try:
            ip = ipaddress.ip_address(target.host)
        except ValueError:
            return None
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        addrs = [ip_literal(family, target.host, target.port)]
        self._cache[target] = (-1.0, addrs)  # never expires
        return addrs

    async def resolve(self, target: Endpoint) -> list[Address]:
        addrs = self.cached(target)
        if addrs is not None:
            return addrs
        key = self._key(target)
        pending = self._inflight.get(key)
        if pending is not None:  # one lookup at a time per name: wsl.exe is slow
            return self._with_port(await asyncio.shield(pending), target.port)
        lookup = asyncio.ensure_future(
            asyncio.to_thread(special_address, key, self.boot)
            if target.special
            else self._lookup(key)
        )
        self._inflight[key] = lookup
        try:
            addrs = await asyncio.shield(lookup)
        finally:
            self._inflight.pop(key, None)
        old = self._last.get(key)
        self._last[key] = addrs
        if old is not None and old != addrs and self.on_change is not None:
            self.on_change(target, old, addrs)
        self._cache[key] = (time.monotonic() + self.ttl, addrs)
        self.resolved_at[key] = time.time()
        return self._with_port(addrs, target.port)

    def peek(self, target: Endpoint) -> list[Address] | None:
        """The last addresses found for a target, fresh or not (for status)."""
        found = self._last.get(self._key(target))
        return self._with_port(found, target.port) if found is not None else None

    def when(self, target: Endpoint) -> float | None:
        return self.resolved_at.get(self._key(target))

    def forget(self, target: Endpoint) -> None:
        """Drops a cached name after a failed connect, so the next one asks again."""
        self._cache.pop(self._key(target), None)

    async def _lookup(self, target: Endpoint) -> list[Address]:
        try:
            infos = await self.loop.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except socket.gaierror as exc:
            raise ResolveError(f"cannot resolve {target.host!r}: {exc.strerror}") from None
        addrs: list[Address] = []
        for family, _, _, _, sockaddr in infos:
            entry = from_getaddrinfo(family, sockaddr)
            if entry is not None and entry not in addrs:
                addrs.append(entry)
        if not addrs:
            raise ResolveError(f"{target.host!r} has no IPv4 or IPv6 address")
        return addrs


def stopped_distro(distro: str | None) -> str | None:
    """The name of the distribution a `wsl` target means, if it is not running (asked
    without starting it: `wsl.exe -l` never boots); None when it runs or cannot be told."""
    from wslnet import system
    from wslnet.facts import windows as win

    code, out, _ = system.wsl_exe(["-l", "-v"], timeout=5.0)
    if code != 0:
        return None  # the real call below will say what is wrong
    distros, _ = win.parse_wsl_list(out)
    name = distro or next((d.name for d in distros if d.default), None)
    if name is None or name not in {d.name for d in distros}:
        return None  # no such distribution: the real call says so in wsl.exe's words
    code, out, _ = system.wsl_exe(["-l", "--running", "-q"], timeout=5.0)
    running = {ln.strip() for ln in out.replace("\x00", "").splitlines() if ln.strip()}
    return None if code != 0 or name in running else name


def special_address(target: Endpoint, boot: bool = True) -> list[Address]:
    """`wsl`/`wsl@DISTRO`: the VM's eth0 address from wsl.exe; `host`: the Windows host.
    Without `boot`, a stopped distribution is reported, not started (wsl.exe -d starts it)."""
    if target.host == HOST:
        from wslnet.hostaddr import find_host
        from wslnet.where import detect

        found = find_host(detect())
        if found.address is None:
            raise ResolveError(f"no Windows host address: {found.why_none}")
        return [(socket.AF_INET, (found.address, target.port))]
    from wslnet import system
    from wslnet.facts.ipaddr import parse_oneline

    distro = target.host.split("@", 1)[1] if "@" in target.host else None
    if not boot:
        stopped = stopped_distro(distro)
        if stopped is not None:
            raise ResolveError(
                f"distro {stopped} is stopped (wslnet forward --boot would start it)"
            )
    args = (["-d", distro] if distro else []) + ["-e", "ip", "-4", "-o", "addr", "show"]
    code, out, err = system.wsl_exe([*args, "dev", "eth0"])
    if code != 0:
        said = " ".join((err or out).split()) or f"exit code {code}"
        raise ResolveError(f"{WSL if distro is None else target.host}: {said}")
    addrs, _ = parse_oneline(out)
    found4 = [a.address for a in addrs if a.family == "inet"]
    if not found4:
        raise ResolveError(f"{target.host}: eth0 has no IPv4 address in the VM")
    return [(socket.AF_INET, (found4[0], target.port))]


def how_found(target: Endpoint) -> str:
    """How a target's address is looked up, for the log line that reports it."""
    if target.host == HOST:
        return "the Windows host, as `wslnet ip host` finds it"
    if target.special:
        distro = target.host.split("@", 1)[1] if "@" in target.host else None
        return f"wsl.exe {'-d ' + distro + ' ' if distro else ''}-e ip -4 -o addr show dev eth0"
    return "DNS"
