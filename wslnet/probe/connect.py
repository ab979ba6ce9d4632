"""TCP connect probe: open, refused, filtered (no answer), unreachable, or error."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from dataclasses import dataclass
from typing import Literal

State = Literal["open", "refused", "filtered", "unreachable", "error"]


@dataclass
class ProbeResult:
    host: str
    port: int
    state: State
    seconds: float
    detail: str = ""


async def tcp(host: str, port: int, timeout: float = 1.0) -> ProbeResult:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    t0 = time.monotonic()
    state: State
    detail = ""
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        state = "open"
    except (asyncio.TimeoutError, TimeoutError):
        state, detail = "filtered", f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        state, detail = "refused", "the host answered with a reset"
    except OSError as exc:
        unreachable = exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
        state = "unreachable" if unreachable else "error"
        # asyncio words it "Connect call failed (...)": say what the system said.
        detail = os.strerror(exc.errno) if exc.errno else str(exc)
    finally:
        sock.close()
    return ProbeResult(host, port, state, round(time.monotonic() - t0, 4), detail)
