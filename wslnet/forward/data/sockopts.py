"""Socket options for UDP sockets, listening or connected towards a target."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

UDP_BUFFER = 4 << 20

# mswsock.h: _WSAIOW(IOC_VENDOR, 12). Not in `socket`: CPython's socket.ioctl takes only
# SIO_RCVALL, SIO_KEEPALIVE_VALS and SIO_LOOPBACK_FAST_PATH (Modules/socketmodule.c
# sock_ioctl), so it goes through ws2_32's WSAIoctl.
SIO_UDP_CONNRESET = 0x9800000C

# WSAIoctl(s, code, in, in_size, out, out_size, &returned, overlapped, routine) -> 0 | -1
WsaIoctl = Callable[..., int]


def _ws2_wsaioctl() -> WsaIoctl | None:
    """ws2_32's WSAIoctl, typed for ctypes; None off Windows."""
    if sys.platform != "win32":
        return None
    import ctypes

    ws2 = ctypes.WinDLL("ws2_32", use_last_error=True)
    fn = ws2.WSAIoctl
    ptr = ctypes.c_void_p
    fn.argtypes = [ctypes.c_size_t, ctypes.c_ulong, ptr, ctypes.c_ulong, ptr, ctypes.c_ulong,
                   ctypes.POINTER(ctypes.c_ulong), ptr, ptr]  # fmt: skip
    fn.restype = ctypes.c_int
    wsaioctl: WsaIoctl = fn
    return wsaioctl


wsa_ioctl: WsaIoctl | None = _ws2_wsaioctl()  # the seam: a test puts a recorder here


def no_connreset(sock: socket.socket) -> None:
    """Windows reports an ICMP port unreachable caused by an earlier datagram as WinError
    10054 on the next receive (SIO_UDP_CONNRESET), on a listening socket too, where a reply
    to a client that went away is all it means. Turned off there; a socket towards a target
    keeps it, so its session ends when the target is gone. Raises OSError (winerror set)
    if Windows refuses."""
    call = wsa_ioctl
    if call is None:
        return
    import ctypes  # here: a forwarder off Windows never needs it (400 KiB of memory)

    off = ctypes.c_uint32(0)  # BOOL FALSE: do not report
    returned = ctypes.c_ulong(0)
    rc = call(sock.fileno(), SIO_UDP_CONNRESET, ctypes.byref(off), ctypes.sizeof(off),
              None, 0, ctypes.byref(returned), None, None)  # fmt: skip
    if rc != 0:
        raise OSError(0, "WSAIoctl(SIO_UDP_CONNRESET) failed", None, _last_error())


def _last_error() -> int:
    if sys.platform == "win32":
        import ctypes

        return ctypes.get_last_error()  # WSAGetLastError's value, kept by use_last_error
    return 0


def big_buffers(sock: socket.socket) -> None:
    """A burst of datagrams from many clients must not overflow the default ~200 KiB
    buffer while the loop is busy: ask for more (root may exceed rmem_max)."""
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # SO_*BUFFORCE
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, force if sys.platform == "linux" else opt, UDP_BUFFER
            )
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, UDP_BUFFER)
            except OSError:
                pass
