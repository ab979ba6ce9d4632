"""The one place the data path reaches past asyncio's public API into its stdlib loops.

- Windows' proactor: each socket operation one overlapped future (asyncio's
  IocpProactor), chained from callbacks as asyncio's own proactor servers chain their
  accepts, with no task per connection or per datagram.
- The transport factory both stdlib loops (selector and proactor) use for each socket
  their servers accept: it wraps a connected socket at once, with no task or future.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, Protocol

# (socket, protocol) -> transport; connection_made follows on the loop's next turn
MakeTransport = Callable[[socket.socket, asyncio.BaseProtocol], asyncio.BaseTransport]


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


def settle_accept_task(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]) -> None:
    """IocpProactor.accept awaits each accept in a task of its own (accept_coro, in
    Lib/asyncio/windows_events.py IocpProactor.accept, 3.10-3.14) that re-raises a failed
    accept where nobody retrieves it: "Task exception was never retrieved" once it is
    collected. The forwarder has handled that failure; this marks the task's as seen.
    On failures only: it looks through the loop's tasks for the one awaiting `fut`."""
    for task in asyncio.all_tasks(loop):
        if getattr(task, "_fut_waiter", None) is fut:
            task.add_done_callback(_retrieve)
            return


def handled_accept_failure(context: dict[str, Any]) -> bool:
    """Whether a loop error is accept_coro's "never retrieved" failure of an accept the
    forwarder has already handled (every failed accept is; core/accept.py). When the
    AcceptEx failed before the task's first step ran (IocpProactor.accept schedules it
    with ensure_future, and _poll sets the exception in the same turn), the task is done
    before settle_accept_task can find it, and only the loop's handler sees it."""
    task = context.get("future")
    if not isinstance(task, asyncio.Task) or not isinstance(context.get("exception"), OSError):
        return False
    return getattr(task.get_coro(), "__qualname__", "").endswith("accept_coro")


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def transport_maker(loop: asyncio.AbstractEventLoop) -> MakeTransport | None:
    """The stdlib loops' `_make_socket_transport`; None on loops without one (uvloop),
    which wrap a socket only through the public coroutines."""
    make: MakeTransport | None = getattr(loop, "_make_socket_transport", None)
    return make
