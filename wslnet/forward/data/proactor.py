"""Windows' proactor, as the data path uses it: each socket operation one overlapped
future (asyncio's IocpProactor), chained from callbacks as asyncio's own proactor
servers chain their accepts, with no task per connection or per datagram."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol


class Proactor(Protocol):
    """The IocpProactor calls the forwarder makes; each returns a cancellable future."""

    def accept(self, listener: socket.socket) -> asyncio.Future[Any]: ...
    def connect(self, conn: socket.socket, address: Any) -> asyncio.Future[Any]: ...
    def recv(self, conn: socket.socket, nbytes: int) -> asyncio.Future[Any]: ...
    def recvfrom(self, conn: socket.socket, nbytes: int) -> asyncio.Future[Any]: ...
    def send(self, conn: socket.socket, buf: bytes) -> asyncio.Future[Any]: ...
    def sendto(
        self, conn: socket.socket, buf: bytes, flags: int = 0, addr: Any = None
    ) -> asyncio.Future[Any]: ...


def proactor_of(loop: asyncio.AbstractEventLoop) -> Proactor | None:
    """The loop's proactor: Windows' ProactorEventLoop has one; selector loops and uvloop,
    which can watch descriptors instead, do not."""
    proactor: Proactor | None = getattr(loop, "_proactor", None)
    return proactor
