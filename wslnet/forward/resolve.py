"""Target addresses: IP literals as they are, host names through a short-lived cache."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

from wslnet.forward.rules import Endpoint

Address = tuple[socket.AddressFamily, tuple[str, int]]


class ResolveError(Exception):
    pass


class Resolver:
    def __init__(self, loop: asyncio.AbstractEventLoop, ttl: float = 30.0) -> None:
        self.loop = loop
        self.ttl = ttl
        self._cache: dict[Endpoint, tuple[float, list[Address]]] = {}

    def cached(self, target: Endpoint) -> list[Address] | None:
        """The addresses known without asking anyone: an IP literal, or a fresh cache entry."""
        hit = self._cache.get(target)
        if hit is not None and (hit[0] < 0 or hit[0] > time.monotonic()):
            return hit[1]
        try:
            ip = ipaddress.ip_address(target.host)
        except ValueError:
            return None
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        addrs = [(family, (target.host, target.port))]
        self._cache[target] = (-1.0, addrs)  # never expires
        return addrs

    async def resolve(self, target: Endpoint) -> list[Address]:
        addrs = self.cached(target)
        if addrs is None:
            addrs = await self._lookup(target)
            self._cache[target] = (time.monotonic() + self.ttl, addrs)
        return addrs

    def forget(self, target: Endpoint) -> None:
        """Drops a cached name after a failed connect, so the next one asks again."""
        hit = self._cache.get(target)
        if hit is not None and hit[0] >= 0:
            del self._cache[target]

    async def _lookup(self, target: Endpoint) -> list[Address]:
        try:
            infos = await self.loop.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except socket.gaierror as exc:
            raise ResolveError(f"cannot resolve {target.host!r}: {exc.strerror}") from None
        addrs: list[Address] = []
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                entry = (socket.AddressFamily(family), (str(sockaddr[0]), int(sockaddr[1])))
                if entry not in addrs:
                    addrs.append(entry)
        if not addrs:
            raise ResolveError(f"{target.host!r} has no IPv4 or IPv6 address")
        return addrs
