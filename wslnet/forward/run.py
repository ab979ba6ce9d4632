"""Runs a forwarder to completion: the composition root that wires the core, the data
path and the control plane together (event loop, signals, descriptor limit)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from wslnet import system
from wslnet.errors import ListenError, UsageError, WslnetError
from wslnet.facts.procnet import SocketEntry
from wslnet.forward.control.configfile import FileConfig, default_path
from wslnet.forward.control.reload import Reloader
from wslnet.forward.core.admit import udp_budget
from wslnet.forward.core.config import ForwardConfig, LoopName
from wslnet.forward.core.listen import overlaps
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import ResolveError, how_found
from wslnet.forward.core.rules import HOST, Endpoint, Rule, format_addr
from wslnet.forward.core.server import Forwarder
from wslnet.forward.core.table import Origin
from wslnet.forward.data.address import Address
from wslnet.forward.data.dial import REFUSED, connect_reason
from wslnet.forward.data.ends import End
from wslnet.forward.data.loops import handled_accept_failure
from wslnet.listeners import read_tcp_listeners

PROBE_TIMEOUT = 3.0  # Windows retries a refused loopback connect for about 2 s


def raise_fd_limit() -> int | None:
    """Each connection holds 2 sockets (and 4 pipe ends while data flows). Returns the
    limit now in force (None on Windows, which has none for sockets)."""
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 1 << 20:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def check_state_folder() -> None:
    """--api writes its token to the state folder: one that cannot be ours alone ends the
    start before any rule listens (issue 20), not after."""
    from wslnet.forward.control.statefile import private_dir, state_dir

    try:
        private_dir(state_dir())
    except WslnetError as exc:
        raise UsageError(exc.message) from None
    except OSError as exc:
        raise UsageError(f"cannot make the state folder {state_dir()}: {exc.strerror}") from None


def keep_std_fds() -> None:
    """Descriptors 0-2 open, on the null device where they are closed (a service manager,
    `>&- 2>&-`): else the log file or an epoll takes one of them, and libuv, which
    asserts fd > STDERR_FILENO for what it closes, aborts the process (uvloop, SIGTERM)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: `fd`
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


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
    if config.api is not None:
        check_state_folder()
    nofile = raise_fd_limit()
    if nofile is not None:
        config = dataclasses.replace(config, udp_budget=udp_budget(nofile))
    keep_std_fds()
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
    if config.config_path is not None:
        tasks.append(asyncio.create_task(reloader.watch()))
    auto = None
    if config.auto is not None:
        from wslnet.forward.control.auto import AutoForward

        auto = AutoForward(fwd, log, config.auto, config.allow)
        if api is not None:
            api.listeners.watch = auto  # the dashboard lists what the watch sees
        tasks.append(asyncio.create_task(auto.run()))
    tasks.append(asyncio.create_task(_probe_targets(fwd, rules, log)))  # after the watcher
    from wslnet.forward.control.status import registered

    with capture_signals(fwd, reloader) as stopped, registered(fwd, api):
        budget = {"udp_budget": config.udp_budget} if config.udp_budget is not None else {}
        log(
            "info",
            "started",
            "",
            rules=len(fwd.table.rules),
            engine=fwd.engine,
            loop=loop,
            **budget,
        )
        try:
            await fwd.serve()
        finally:
            stopped.set()
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


def target_down(target: str, end: End) -> str:
    """The start's one line about a TCP target that a connect did not reach."""
    if end.kind == "connect-refused":
        now = "refuses connections now"
    elif end.kind == "connect-unreachable":
        now = "is unreachable now"
    elif end.kind == "connect-timeout":
        now = f"does not answer now (no reply in {PROBE_TIMEOUT:g} s)"
    else:
        now = f"cannot be reached now ({end.detail})"
    return f"target {target} {now}; forwarding anyway"


def listened(entries: list[SocketEntry], addrs: list[Address]) -> bool:
    """Whether this machine's socket table has a TCP listener that takes a connect to one
    of `addrs`. A `::` listener may take IPv4 too (unless V6ONLY, which /proc hides)."""
    return any(
        e.proto == "tcp" and e.listening and e.port == sockaddr[1]
        and (e.address == "::" or overlaps(e.address, sockaddr[0]))
        for e in entries
        for _, sockaddr in addrs
    )  # fmt: skip


async def _probe_targets(fwd: Forwarder, rules: list[tuple[Rule, Origin]], log: EventLog) -> None:
    """Each TCP target checked once, all at once, beside the start (never before it): a
    target that is down is said now, not when the first client fails (issue 22). A target
    on this machine is looked up in the socket table (Linux), never connected to: a
    one-shot server (gdbserver, a test's) would take the check for its one client."""
    targets = {r.target: fwd.resolver.cached(r.target) for r, _ in rules if r.proto == "tcp"}
    local = sys.platform == "linux" and any(a and _on_loopback(a) for a in targets.values())
    table = await asyncio.to_thread(read_tcp_listeners) if local else None

    async def one(target: Endpoint, addrs: list[Address]) -> None:
        if table is not None and _on_loopback(addrs):
            end = None if listened(table, addrs) else REFUSED
        else:
            end = await _connect_once(addrs, PROBE_TIMEOUT)
        if end is not None:
            log("warning", "target-down", target=str(target), msg=target_down(str(target), end))

    # A target that does not resolve was said by _resolve_at_start.
    await asyncio.gather(*(one(t, a) for t, a in targets.items() if a))


def _on_loopback(addrs: list[Address]) -> bool:
    return all(ipaddress.ip_address(sockaddr[0]).is_loopback for _, sockaddr in addrs)


async def _connect_once(addrs: list[Address], timeout: float) -> End | None:
    """None when a connect to one of `addrs` succeeds (then closed), else why the last
    one failed."""
    loop = asyncio.get_running_loop()
    end = None
    for family, sockaddr in addrs:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), timeout)
            return None
        except (OSError, asyncio.TimeoutError) as exc:
            end = connect_reason(exc)
        finally:
            sock.close()
    return end


@contextlib.contextmanager
def capture_signals(fwd: Forwarder, reloader: Reloader) -> Iterator[threading.Event]:
    """The run's signal handlers, and the originals back when it ends (uvicorn's
    capture_signals). Yields the event to set once the forwarder has stopped."""
    loop = asyncio.get_running_loop()
    stopped = threading.Event()
    handlers: dict[signal.Signals, Callable[[], object]] = {
        signal.SIGINT: fwd.request_stop,
        signal.SIGTERM: fwd.request_stop,
    }
    if sys.platform != "win32":  # on Windows reload is the file watcher's and the API's
        handlers[signal.SIGHUP] = lambda: loop.create_task(reloader.reload())
    original = {sig: signal.getsignal(sig) for sig in handlers}
    by_loop: list[signal.Signals] = []
    undo_console = _windows_console_events(fwd, loop, stopped)
    try:
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
                by_loop.append(sig)
            except (NotImplementedError, RuntimeError):
                # Windows' loops have no add_signal_handler: hop over from the handler.
                signal.signal(sig, functools.partial(_hop, loop, handler))
        yield stopped
    finally:
        stopped.set()
        for sig in by_loop:
            loop.remove_signal_handler(sig)
        for sig, old in original.items():
            signal.signal(sig, old)
        undo_console()


def _hop(loop: asyncio.AbstractEventLoop, handler: Callable[[], object], *_: object) -> None:
    loop.call_soon_threadsafe(handler)


def _windows_console_events(
    fwd: Forwarder, loop: asyncio.AbstractEventLoop, stopped: threading.Event
) -> Callable[[], None]:
    """Console close and Ctrl+Break drain like SIGTERM on Linux. Windows ends the process
    when the handler returns TRUE (HandlerRoutine, learn.microsoft.com), so it waits (a
    few seconds at most, which is what Windows gives) for the drain to finish and the
    log lines to be written. Logoff and shutdown reach a console program only when it
    runs as a service ("interactive applications are terminated at logoff"), and
    pythonw, with no console, gets none of these. Returns the undo."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        close_events = (2, 5, 6)  # CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT

        def handler(event: int) -> bool:
            loop.call_soon_threadsafe(fwd.request_stop)
            if event in close_events and stopped.wait(timeout=4.0):
                fwd.log.flush(timeout=0.5)  # the "stopped" line, before Windows ends us
            return True

        # Held by the undo's closure: ctypes must not free it while Windows may call it.
        callback = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)(handler)
        if not ctypes.windll.kernel32.SetConsoleCtrlHandler(callback, True):
            fwd.log("warning", "internal-error", msg="console events will not drain")

        def undo() -> None:
            ctypes.windll.kernel32.SetConsoleCtrlHandler(callback, False)

        return undo
    return lambda: None


def _loop_error_logger(
    log: EventLog,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """A bug in a callback is one log line (the traceback only with -v), never a crash."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if handled_accept_failure(context):
            return  # logged where it was handled (at debug: a client that went away)
        exc = context.get("exception")
        what = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
        fields: dict[str, object] = {}
        if exc is not None and log.enabled("debug"):
            fields["traceback"] = "".join(traceback.format_exception(exc)).strip()
        log("error", "internal-error", msg=str(what), **fields)

    return handler
