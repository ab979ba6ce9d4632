"""Runs a forwarder to completion: event loop choice, signals, descriptor limit."""

from __future__ import annotations

import asyncio
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from wslnet.errors import UsageError
from wslnet.forward.config import ForwardConfig, LoopName
from wslnet.forward.log import EventLog
from wslnet.forward.server import Forwarder


def raise_fd_limit() -> None:
    """Each connection holds 2 sockets (and 4 pipe ends while data flows)."""
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 1 << 20:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def loop_factory(name: LoopName) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    if name in ("auto", "uvloop") and sys.platform != "win32":
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise UsageError(
                    "--loop uvloop: uvloop is not installed (pip install 'wslnet[fast]')"
                ) from None
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return "uvloop", factory
    if name == "uvloop":
        raise UsageError("--loop uvloop is not available on Windows; use --loop asyncio")
    return "asyncio", asyncio.new_event_loop


def run_loop(
    factory: Callable[[], asyncio.AbstractEventLoop], main: Coroutine[Any, Any, int]
) -> int:
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def run(config: ForwardConfig) -> int:
    raise_fd_limit()
    loop_name, factory = loop_factory(config.loop)
    log = EventLog(config.log_format, config.verbosity)
    return run_loop(factory, _main(config, log, loop_name))


async def _main(config: ForwardConfig, log: EventLog, loop_name: str) -> int:
    asyncio.get_running_loop().set_exception_handler(_loop_error_logger(log))
    forwarder = Forwarder(config, log)
    await forwarder.open_listeners()
    _install_signals(forwarder)
    log("info", "started", rules=len(forwarder.rules), engine=forwarder.engine, loop=loop_name)
    await forwarder.serve()
    return 0


def _install_signals(forwarder: Forwarder) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, forwarder.request_stop)
        except (NotImplementedError, RuntimeError):
            # Windows' loops have no add_signal_handler: hop over from the handler.
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(forwarder.request_stop))


def _loop_error_logger(
    log: EventLog,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """A bug in a callback is one log line (the traceback only with -v), never a crash."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        what = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
        fields: dict[str, object] = {}
        if exc is not None and log.enabled("debug"):
            fields["traceback"] = "".join(traceback.format_exception(exc)).strip()
        log("error", "internal-error", msg=str(what), **fields)

    return handler
