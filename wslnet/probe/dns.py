"""Is the resolver alive? One query over an ordinary UDP socket (no root needed).

The query is built with scapy's DNS layer, imported here only, when the probe runs.
Any answer, even "no such name", proves the resolver alive.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from dataclasses import dataclass


@dataclass
class DnsResult:
    server: str
    alive: bool
    seconds: float
    detail: str
    responder: str | None = None


def _query_bytes(name: str, ident: int) -> bytes:
    from scapy.layers.dns import DNS, DNSQR

    return bytes(DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype="A")))


def _answer_code(data: bytes) -> str:
    from scapy.layers.dns import DNS

    codes = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
    rcode = int(DNS(data).rcode)
    return codes.get(rcode, f"rcode {rcode}")


async def query(server: str, name: str = "wslnet-probe.invalid", timeout: float = 1.0) -> DnsResult:
    loop = asyncio.get_running_loop()
    ident = random.randrange(1 << 16)
    payload = await asyncio.to_thread(_query_bytes, name, ident)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    t0 = time.monotonic()
    try:
        await loop.sock_connect(sock, (server.split("%")[0], 53))
        await loop.sock_sendall(sock, payload)
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), left)
            if len(data) >= 2 and int.from_bytes(data[:2], "big") == ident:
                break
        code = await asyncio.to_thread(_answer_code, data)
        return DnsResult(server, True, round(time.monotonic() - t0, 4), code, server)
    except (asyncio.TimeoutError, TimeoutError):
        return DnsResult(
            server, False, round(time.monotonic() - t0, 4), f"no answer in {timeout:g} s"
        )
    except OSError as exc:
        why = exc.strerror or str(exc)
        return DnsResult(server, False, round(time.monotonic() - t0, 4), why)
    finally:
        sock.close()
