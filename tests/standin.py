"""Windows' proactor, stood in for on Linux: IocpProactor's calls as futures of the selector
loop's own socket coroutines. Same shape (one cancellable future per accept, connect,
receive or send), real sockets; so the completion-driven data path (core/accept.py's
CompletionStrategy, data/dial.py's CompletionDialer, data/udp_port.py's CompletionPort)
runs its logic here. The IOCP binding itself runs on the Windows CI job."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any


class LoopProactor:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fail_next: list[OSError] = []  # errors the next receives complete with
        self.hang_connects = False  # connects that never complete (a silent target)
        self.receives = 0
        self.accepts = 0

    def _op(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        return asyncio.ensure_future(coro, loop=self.loop)

    def _receive(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        self.receives += 1
        if self.fail_next:
            coro.close()
            fut = self.loop.create_future()
            fut.set_exception(self.fail_next.pop(0))
            return fut
        return self._op(coro)

    def accept(self, listener: socket.socket) -> asyncio.Future[Any]:
        self.accepts += 1
        return self._op(self.loop.sock_accept(listener))

    def connect(self, conn: socket.socket, address: Any) -> asyncio.Future[Any]:
        if self.hang_connects:
            return self.loop.create_future()
        return self._op(self.loop.sock_connect(conn, address))

    def recv(self, conn: socket.socket, nbytes: int) -> asyncio.Future[Any]:
        return self._receive(self.loop.sock_recv(conn, nbytes))

    def recvfrom(self, conn: socket.socket, nbytes: int) -> asyncio.Future[Any]:
        return self._receive(self.loop.sock_recvfrom(conn, nbytes))

    def send(self, conn: socket.socket, buf: bytes) -> asyncio.Future[Any]:
        return self._op(self.loop.sock_sendall(conn, buf))

    def sendto(
        self, conn: socket.socket, buf: bytes, flags: int = 0, addr: Any = None
    ) -> asyncio.Future[Any]:
        return self._op(self.loop.sock_sendto(conn, buf, addr))


class StandInProactorLoop(asyncio.SelectorEventLoop):
    """A loop the forwarder takes for Windows' proactor (it has a `_proactor`)."""

    def __init__(self) -> None:
        super().__init__()
        self._proactor = LoopProactor(self)


def run_on_standin(main: Coroutine[Any, Any, Any]) -> Any:
    loop = StandInProactorLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
