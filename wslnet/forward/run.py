"""Runs a forwarder to completion: the composition root that wires the core, the data
path and the control plane together (event loop, signals, descriptor limit)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from wslnet import system
from wslnet.errors import ListenError, UsageError
from wslnet.forward.control.configfile import FileConfig, default_path
from wslnet.forward.control.reload import Reloader
from wslnet.forward.core.config import ForwardConfig, LoopName
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import ResolveError, how_found
from wslnet.forward.core.rules import HOST, Endpoint, Rule, format_addr
from wslnet.forward.core.server import Forwarder
from wslnet.forward.core.table import Origin


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


def run(config: ForwardConfig, file: FileConfig | None) -> int:
    """Runs until a signal; `file` is the config file as read at start (its settings
    are already in `config`)."""
    nothing = not config.rules and (file is None or not file.rules)
    if nothing and config.api is None and config.auto is None:
        raise UsageError(
            "no rule given: name one (such as 8080 or 8080=198.18.5.20:8080), "
            f"or write [[forward]] tables in {config.config_path or default_path()}"
        )
    all_rules = [*config.rules, *(file.rules if file else [])]
    wants_wsl = config.auto is not None or any(
        r.target.special and r.target.host != HOST for r in all_rules
    )
    if wants_wsl and system.which("wsl.exe") is None and system.which("wsl") is None:
        raise UsageError(
            "wsl.exe is not here, and the wsl target (or --auto) reaches WSL through it: run "
            "wslnet forward on Windows, or inside WSL with interop on"
        )
    raise_fd_limit()
    loop_name, factory = loop_factory(config.loop)
    log = EventLog(config.log_format, config.verbosity, log_file=config.log_file)
    try:
        return run_loop(factory, _main(config, file, log, loop_name))
    finally:
        log.close(timeout=2.0)  # what is queued goes out, unless the log output is stuck


async def _main(config: ForwardConfig, file: FileConfig | None, log: EventLog, loop: str) -> int:
    asyncio.get_running_loop().set_exception_handler(_loop_error_logger(log))
    fwd = Forwarder(config, log)
    rules: list[tuple[Rule, Origin]] = [(r, "cli") for r in config.rules]
    rules += [(r, "config") for r in (file.rules if file else [])]
    try:
        await fwd.startup(rules)
    except ListenError as exc:
        if sys.platform == "win32":  # say why in Windows' terms (reserved range, relay)
            from wslnet.forward.control.winerrors import explain

            raise explain(exc) from None
        raise
    if sys.platform == "win32":
        from wslnet.forward.control.winerrors import firewall_hints

        for text, command in firewall_hints([*config.rules, *(file.rules if file else [])]):
            log("info", "firewall-hint", rule=text, msg=f"LAN clients need: {command}")
    await _resolve_at_start(fwd, rules, log)
    reloader = Reloader(fwd, config.config_path)
    tasks: list[asyncio.Task[None]] = []
    api = None
    if config.api is not None:
        from wslnet.forward.control.api import ControlApi

        token = os.environ.get("WSLNET_API_TOKEN")
        api = ControlApi(fwd, reloader, *config.api, token)
        try:
            await api.start()
        except BaseException:
            await fwd.shutdown()
            raise
    _install_signals(fwd, reloader)
    if config.config_path is not None:
        tasks.append(asyncio.create_task(reloader.watch()))
    auto = None
    if config.auto is not None:
        from wslnet.forward.control.auto import AutoForward

        auto = AutoForward(fwd, log, config.auto, config.allow)
        tasks.append(asyncio.create_task(auto.run()))
    log("info", "started", rules=len(fwd.table.rules), engine=fwd.engine, loop=loop)
    try:
        await fwd.serve()
    finally:
        STOPPED.set()
        for task in tasks:
            task.cancel()
        if auto is not None:
            auto.stop()
        if api is not None:
            await api.stop()
    return 0


async def _resolve_at_start(
    fwd: Forwarder, rules: list[tuple[Rule, Origin]], log: EventLog
) -> None:
    """Each named target once, now: the log says where each rule goes and how that was
    found, and a target that cannot be found is said at start, not per connection."""
    targets = {r.target for r, _ in rules if fwd.resolver.cached(r.target) is None}

    async def one(target: Endpoint) -> None:
        try:
            addrs = await fwd.resolver.resolve(target)
        except ResolveError as exc:
            log("warning", "resolve-failed", target=str(target), msg=str(exc))
            return
        found = ",".join(format_addr(a[1]) for a in addrs)
        log("info", "resolved", target=str(target), address=found, via=how_found(target))

    await asyncio.gather(*(one(t) for t in targets))


STOPPED = threading.Event()  # set once the forwarder has drained and stopped


def _windows_console_events(fwd: Forwarder, loop: asyncio.AbstractEventLoop) -> None:
    """Console close, Ctrl+Break, logoff and shutdown drain like SIGTERM on Linux.
    Windows ends the process when the handler returns, so it waits (a few seconds at
    most, which is what Windows gives) for the drain to finish."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        close_events = (2, 5, 6)  # CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT

        def handler(event: int) -> bool:
            loop.call_soon_threadsafe(fwd.request_stop)
            if event in close_events:
                STOPPED.wait(timeout=4.5)
            return True

        callback = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)(handler)
        _KEEP.append(callback)  # ctypes must not free it while Windows may call it
        ctypes.windll.kernel32.SetConsoleCtrlHandler(callback, True)


_KEEP: list[object] = []


def _install_signals(fwd: Forwarder, reloader: Reloader) -> None:
    loop = asyncio.get_running_loop()
    if sys.platform == "win32":
        _windows_console_events(fwd, loop)  # reload there: the file watcher and the API
    else:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reloader.reload()))
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, fwd.request_stop)
        except (NotImplementedError, RuntimeError):
            # Windows' loops have no add_signal_handler: hop over from the handler.
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(fwd.request_stop))


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
