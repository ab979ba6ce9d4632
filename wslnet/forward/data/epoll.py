"""An edge-triggered epoll nested in the event loop, for the Linux data path.

The loop watches one descriptor, this epoll's; each connection socket is added to it
once (edge-triggered, in and out) and leaves it by being closed. That replaces the
loop's add_reader/remove_reader churn (several epoll_ctl calls per connection and per
back-pressure flip) with one epoll_ctl per socket.
"""

from __future__ import annotations

import sys

assert sys.platform == "linux"

import asyncio
import select
from collections.abc import Callable

Handler = Callable[[int], None]  # called with the event mask
EDGE = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
READ_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
WRITE_EVENTS = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_BATCH = 256


class EdgePoller:
    write_events = WRITE_EVENTS
    read_events = READ_EVENTS

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ep = select.epoll()
        self.handlers: dict[int, Handler] = {}
        loop.add_reader(self.ep.fileno(), self._dispatch)

    def add(self, fd: int, handler: Handler) -> None:
        self.handlers[fd] = handler
        self.ep.register(fd, EDGE)

    def set_handler(self, fd: int, handler: Handler) -> None:
        self.handlers[fd] = handler

    def forget(self, fd: int) -> None:
        """Call before closing fd: closing removes it from the epoll, at no extra syscall."""
        self.handlers.pop(fd, None)

    def _dispatch(self) -> None:
        handlers = self.handlers
        for fd, events in self.ep.poll(0, _BATCH):
            handler = handlers.get(fd)
            if handler is not None:
                # Handlers tolerate spurious calls: a closed fd's number may be reused.
                handler(events)

    def close(self) -> None:
        self.loop.remove_reader(self.ep.fileno())
        self.ep.close()
