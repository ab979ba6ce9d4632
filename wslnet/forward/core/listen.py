"""Listening sockets for a rule, with one clear line (and the errno) when that fails."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable

from wslnet.errors import ListenError
from wslnet.forward.core.rules import Endpoint, Rule, format_hostport
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


def _cause(exc: OSError) -> str:
    if exc.errno in _LISTEN_ERRORS:
        return _LISTEN_ERRORS[exc.errno]
    return exc.strerror or str(exc)


def bind_listener(
    endpoint: Endpoint,
    kind: int = socket.SOCK_STREAM,
    backlog: int = 4096,
) -> socket.socket:
    """Opens a listening socket exactly on `endpoint`, or raises ListenError."""
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
        else:
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
        raise ListenError(
            f"cannot listen on {where}: {_cause(exc)}", exc.errno, endpoint.port
        ) from None
    return sock


def bind_rule(rule: Rule, on_no_ipv6: Callable[[], None]) -> list[socket.socket]:
    """The rule's listening sockets: one, or 127.0.0.1 and ::1 on the same port.

    Without IPv6 on this machine a both-loopbacks rule listens on 127.0.0.1 alone and
    calls `on_no_ipv6`."""
    kind = socket.SOCK_DGRAM if rule.proto == "udp" else socket.SOCK_STREAM
    hosts = rule.listen_hosts()
    if len(hosts) == 1:
        return [bind_listener(rule.listen, kind)]
    for _ in range(5):
        first = bind_listener(Endpoint(hosts[0], rule.listen.port), kind)
        port = first.getsockname()[1]
        try:
            return [first, bind_listener(Endpoint(hosts[1], port), kind)]
        except ListenError as exc:
            first.close()
            if rule.listen.port == 0 and exc.errno == errno.EADDRINUSE:
                continue  # the free v4 port is taken on v6: draw another
            if exc.errno in _NO_IPV6:
                on_no_ipv6()
                return [bind_listener(Endpoint(hosts[0], port), kind)]
            raise
    raise ListenError(f"cannot find a port free on both 127.0.0.1 and ::1 for {rule.text!r}")
