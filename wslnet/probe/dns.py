"""Is the resolver alive? One query over an ordinary UDP socket (no root needed).

The query is a plain RFC 1035 message built here, so that `wslnet check` loads no packet
library on its way (tests check it against scapy's DNS layer). Any answer, even "no
such name", proves the resolver alive.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import time
from dataclasses import dataclass

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass
class DnsResult:
    server: str
    alive: bool
    seconds: float
    detail: str
    responder: str | None = None


def build_query(name: str, ident: int) -> bytes:
    """A recursive query for NAME's A record."""
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        bytes([len(part)]) + part.encode("ascii") for part in name.strip(".").split(".")
    )
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)


def answer_code(data: bytes) -> str | None:
    """The response code of a DNS answer, or None if `data` is not a response."""
    if len(data) < 12 or not data[2] & 0x80:
        return None
    rcode = data[3] & 0x0F
    return RCODES.get(rcode, f"rcode {rcode}")


async def query(server: str, name: str = "wslnet-probe.invalid", timeout: float = 1.0) -> DnsResult:
    loop = asyncio.get_running_loop()
    ident = random.randrange(1 << 16)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    t0 = time.monotonic()

    def took() -> float:
        return round(time.monotonic() - t0, 4)

    try:
        await loop.sock_connect(sock, (server.split("%")[0], 53))
        await loop.sock_sendall(sock, build_query(name, ident))
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), left)
            code = answer_code(data)
            if code is not None and int.from_bytes(data[:2], "big") == ident:
                peer = sock.getpeername()[0]
                return DnsResult(server, True, took(), code, str(peer))
    except (asyncio.TimeoutError, TimeoutError):
        return DnsResult(server, False, took(), f"no answer in {timeout:g} s")
    except OSError as exc:
        return DnsResult(server, False, took(), exc.strerror or str(exc))
    finally:
        sock.close()


async def query_tcp(
    server: str, name: str = "wslnet-probe.invalid", timeout: float = 1.0
) -> DnsResult:
    """The same query over TCP (RFC 1035 4.2.2: a two-byte length first): large answers
    need it, and some resolvers and firewalls break it while UDP works."""
    ident = random.randrange(1 << 16)
    t0 = time.monotonic()

    def took() -> float:
        return round(time.monotonic() - t0, 4)

    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(server.split("%")[0], 53), timeout
        )
    except (asyncio.TimeoutError, TimeoutError):
        return DnsResult(server, False, took(), f"no TCP connection in {timeout:g} s")
    except OSError as exc:
        # asyncio words it "Connect call failed (...)": say what the system said.
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        return DnsResult(server, False, took(), f"TCP: {why.lower()}")
    try:
        msg = build_query(name, ident)
        writer.write(struct.pack(">H", len(msg)) + msg)
        left = timeout - (time.monotonic() - t0)
        size = struct.unpack(">H", await asyncio.wait_for(reader.readexactly(2), left))[0]
        left = timeout - (time.monotonic() - t0)
        data = await asyncio.wait_for(reader.readexactly(size), max(left, 0.01))
        code = answer_code(data)
        if code is None or int.from_bytes(data[:2], "big") != ident:
            return DnsResult(server, False, took(), "not a DNS answer over TCP")
        return DnsResult(server, True, took(), code, server)
    except (asyncio.TimeoutError, TimeoutError):
        return DnsResult(server, False, took(), f"no answer over TCP in {timeout:g} s")
    except (OSError, asyncio.IncompleteReadError) as exc:
        return DnsResult(server, False, took(), f"TCP: {exc}")
    finally:
        writer.close()
