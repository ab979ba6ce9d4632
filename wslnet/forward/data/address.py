"""A target address as the data path dials it: (family, sockaddr), the sockaddr whole as
getaddrinfo gives it. IPv6 needs its 4-tuple on Windows: ConnectEx's parser reads any
2-tuple as IPv4 (Modules/overlapped.c parse_address), so ("::1", port) never connects."""

from __future__ import annotations

import socket

SockAddr = tuple[str, int] | tuple[str, int, int, int]
Address = tuple[socket.AddressFamily, SockAddr]


def with_port(sockaddr: SockAddr, port: int) -> SockAddr:
    """The same address on another port (flow info and scope kept)."""
    if len(sockaddr) == 4:
        return (sockaddr[0], port, sockaddr[2], sockaddr[3])
    return (sockaddr[0], port)


def from_getaddrinfo(family: int, sockaddr: tuple[object, ...]) -> Address | None:
    """One getaddrinfo entry as an Address, its sockaddr whole; None unless IPv4 or IPv6."""
    host, port = str(sockaddr[0]), int(sockaddr[1])  # type: ignore[call-overload]
    if family == socket.AF_INET6:
        flow, scope = int(sockaddr[2]), int(sockaddr[3])  # type: ignore[call-overload]
        return (socket.AF_INET6, (host, port, flow, scope))
    if family == socket.AF_INET:
        return (socket.AF_INET, (host, port))
    return None


def ip_literal(family: socket.AddressFamily, host: str, port: int) -> Address:
    """An IP literal's address, as getaddrinfo would give it (numeric: no lookup)."""
    if family != socket.AF_INET6:
        return (family, (host, port))
    info = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    found = from_getaddrinfo(info[0][0], info[0][4])
    assert found is not None
    return found
