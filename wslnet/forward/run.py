"""Runs a forwarder to completion: event loop choice, signals, descriptor limit."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from wslnet.errors import UsageError
from wslnet.forward.config import ForwardConfig, LoopName
from wslnet.forward.configfile import FileConfig, default_path, load
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


def with_file(config: ForwardConfig) -> tuple[ForwardConfig, FileConfig | None]:
    """Reads the config file (--config, or the default one if it exists); command-line
    options win over its settings."""
    path = config.config_path
    if path is None:
        default = default_path()
        path = default if default.is_file() else None
    if path is None:
        return config, None
    conf = load(path)
    given = {k: v for k, v in conf.settings.items() if k not in config.explicit}
    return dataclasses.replace(config, config_path=path, **given), conf


def run(config: ForwardConfig) -> int:
    config, conf = with_file(config)
    if config.auto:
        from wslnet.forward.auto import parse_ports

        parse_ports(config.include, "--include")
        parse_ports(config.exclude, "--exclude")
        if config.lan and config.allow is None and not config.allow_any:
            raise UsageError(
                "--auto --lan exposes ports to the LAN: say who may connect "
                "with --allow CIDR, or --allow-any"
            )
    nothing = not config.rules and (conf is None or not conf.rules)
    if nothing and config.api is None and not config.auto:
        raise UsageError(
            "no rule given: name one (such as 8080 or 8080=198.18.5.20:8080), "
            f"or write [[forward]] tables in {config.config_path or default_path()}"
        )
    raise_fd_limit()
    loop_name, factory = loop_factory(config.loop)
    log = EventLog(config.log_format, config.verbosity)
    return run_loop(factory, _main(config, conf, log, loop_name))


async def _main(
    config: ForwardConfig, conf: FileConfig | None, log: EventLog, loop_name: str
) -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_error_logger(log))
    forwarder = Forwarder(config, log)
    forwarder.config_path = config.config_path
    await forwarder.open_listeners(conf.rules if conf else None)
    api = None
    if config.api is not None:
        from wslnet.forward.api import ControlApi

        api = ControlApi(forwarder, *config.api, os.environ.get("WSLNET_API_TOKEN"))
        try:
            await api.start()
        except BaseException:
            await forwarder.shutdown()
            raise
    _install_signals(forwarder)
    watcher = None
    if config.config_path is not None:
        watcher = loop.create_task(_watch(forwarder, config.config_path))
    auto = None
    if config.auto:
        from wslnet.forward.auto import AutoForward, parse_ports

        auto = AutoForward(
            forwarder,
            log,
            config.distro,
            parse_ports(config.include, ""),
            parse_ports(config.exclude, ""),
            config.lan,
            config.allow,
        )
        auto_task = loop.create_task(auto.run())
    log("info", "started", rules=len(forwarder.rules), engine=forwarder.engine, loop=loop_name)
    try:
        await forwarder.serve()
    finally:
        if watcher is not None:
            watcher.cancel()
        if auto is not None:
            auto_task.cancel()
            auto.stop()
        if api is not None:
            await api.stop()
    return 0


async def _watch(forwarder: Forwarder, path: Path, every: float = 1.0) -> None:
    """Reloads when the file changes (its mtime or size)."""

    def stamp() -> tuple[float, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    last = stamp()
    while True:
        await asyncio.sleep(every)
        now = stamp()
        if now != last and now is not None:
            last = now
            await forwarder.reload_config()


def _install_signals(forwarder: Forwarder) -> None:
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(forwarder.reload_config()))
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
