"""Listening sockets for a rule, with one clear line (and the errno) when that fails."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from wslnet.errors import ListenError
from wslnet.escape import control
from wslnet.forward.core.rules import Endpoint, Proto, Rule, format_hostport
from wslnet.forward.data.sockopts import big_buffers, no_connreset

_LISTEN_ERRORS = {
    errno.EADDRINUSE: "address already in use: another program listens there; "
    "stop it or pick another port",
    errno.EADDRNOTAVAIL: "address not available: no interface here has that address",
    errno.EACCES: "permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE)",
    errno.EAFNOSUPPORT: "this address family is not supported here (IPv6 disabled?)",
}
if sys.platform == "win32":
    # WSAEACCES (10013, mapped to EACCES): a port Hyper-V/WinNAT reserved, or one another
    # program holds exclusively. Never "root" on Windows.
    _LISTEN_ERRORS[errno.EACCES] = (
        "access denied: Windows reserves this port (see `netsh interface ipv4 show "
        "excludedportrange protocol=tcp`) or another program holds it exclusively"
    )
_NO_IPV6 = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


@dataclass(frozen=True)
class HeldByRule:
    """The port in use is this forwarder's own: another of its rules listens there."""

    id: int
    text: str


@dataclass(frozen=True)
class HeldByProgram:
    name: str
    pid: int


Holder = HeldByRule | HeldByProgram | None
# Who holds (proto, endpoint), asked only when a bind finds the address in use.
WhoHolds = Callable[[Proto, Endpoint], Holder]


def in_use(who: Holder) -> str:
    """Why a port is in use, naming the holder where it is known."""
    if isinstance(who, HeldByRule):
        return f"rule {who.id} ({control(who.text)}) already listens there"
    if isinstance(who, HeldByProgram):
        return (
            f"address already in use: {control(who.name)} (pid {who.pid}) listens there; "
            "stop it or pick another port"
        )
    return _LISTEN_ERRORS[errno.EADDRINUSE]


def overlaps(bound: str, want: str) -> bool:
    """Whether a socket bound to `bound` takes the port on `want` too (the same address,
    or either is the wildcard of its family)."""
    try:
        a, b = ipaddress.ip_address(bound.split("%")[0]), ipaddress.ip_address(want)
    except ValueError:
        return False
    return a == b or (a.version == b.version and (a.is_unspecified or b.is_unspecified))


def program_holding(proto: Proto, endpoint: Endpoint) -> HeldByProgram | None:
    """The program listening on `endpoint`, where this machine's socket table says
    (Linux: /proc/net and the processes' descriptors we may read); None elsewhere.
    Slow enough to run only after a bind failed."""
    if sys.platform != "linux":
        return None  # Windows: netstat -ano costs a process; say only what is known
    from wslnet import system
    from wslnet.listeners import read_sockets, read_tcp_listeners

    entries = read_tcp_listeners() if proto == "tcp" else read_sockets()[0]
    inodes = [
        e.inode
        for e in entries
        if e.proto == proto and e.port == endpoint.port and e.listening
        and overlaps(e.address, endpoint.host)
    ]  # fmt: skip
    if not inodes:
        return None
    owners = system.socket_owners()
    found = next((owners[i] for i in inodes if i in owners), None)
    return HeldByProgram(found[1], found[0]) if found is not None else None


def _cause(exc: OSError, held: Holder = None) -> str:
    if exc.errno == errno.EADDRINUSE:
        return in_use(held)
    if exc.errno in _LISTEN_ERRORS:
        return _LISTEN_ERRORS[exc.errno]
    return exc.strerror or str(exc)


def bind_listener(
    endpoint: Endpoint,
    kind: int = socket.SOCK_STREAM,
    backlog: int = 4096,
    who_holds: WhoHolds | None = None,
) -> socket.socket:
    """Opens a listening socket exactly on `endpoint`, or raises ListenError (naming
    who holds the address, when it is in use and `who_holds` knows)."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    where = format_hostport(endpoint.host, endpoint.port)
    if kind == socket.SOCK_DGRAM:
        where = "udp/" + where
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise ListenError(f"cannot listen on {where}: {_cause(exc)}", exc.errno) from None
    try:
        if sys.platform == "win32":
            # SO_REUSEADDR on Windows lets another program steal the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        elif kind == socket.SOCK_STREAM:
            # For TCP it only skips TIME_WAIT; for UDP on Linux it lets a second socket
            # (another rule, another program) bind the same port and take its datagrams.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if sys.platform != "win32" and kind == socket.SOCK_STREAM:
            # Accepted sockets inherit it on Linux and the BSDs: one setsockopt less each.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((endpoint.host, endpoint.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
        else:
            big_buffers(sock)
            no_connreset(sock)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        proto: Proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
        taken = exc.errno == errno.EADDRINUSE
        held = who_holds(proto, endpoint) if taken and who_holds is not None else None
        raise ListenError(
            f"cannot listen on {where}: {_cause(exc, held)}", exc.errno, endpoint.port
        ) from None
    return sock


def bind_rule(
    rule: Rule, on_no_ipv6: Callable[[], None], who_holds: WhoHolds | None = None
) -> list[socket.socket]:
    """The rule's listening sockets: one, or 127.0.0.1 and ::1 on the same port.

    Without IPv6 on this machine a both-loopbacks rule listens on 127.0.0.1 alone and
    calls `on_no_ipv6`."""
    kind = socket.SOCK_DGRAM if rule.proto == "udp" else socket.SOCK_STREAM
    hosts = rule.listen_hosts()
    if len(hosts) == 1:
        return [bind_listener(rule.listen, kind, who_holds=who_holds)]
    for _ in range(5):
        first = bind_listener(Endpoint(hosts[0], rule.listen.port), kind, who_holds=who_holds)
        port = first.getsockname()[1]
        try:
            second = Endpoint(hosts[1], port)
            ask = who_holds if rule.listen.port else None  # port 0: retried, not said
            return [first, bind_listener(second, kind, who_holds=ask)]
        except ListenError as exc:
            first.close()
            if rule.listen.port == 0 and exc.errno == errno.EADDRINUSE:
                continue  # the free v4 port is taken on v6: draw another
            if exc.errno in _NO_IPV6:
                on_no_ipv6()
                return [bind_listener(Endpoint(hosts[0], port), kind)]
            raise
    raise ListenError(f"cannot find a port free on both 127.0.0.1 and ::1 for {rule.text!r}")
