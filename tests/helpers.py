"""Test servers on real sockets, and a handle on a real `wslnet forward` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ROOT = Path(__file__).resolve().parent.parent
_VALIDATORS: dict[str, object] = {}


def assert_schema(doc: object, name: str) -> None:
    """The document follows its shipped JSON Schema (wslnet/schemas/NAME.json)."""
    import jsonschema

    validator = _VALIDATORS.get(name)
    if validator is None:
        schema = json.loads((ROOT / "wslnet" / "schemas" / f"{name}.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = _VALIDATORS[name] = jsonschema.Draft202012Validator(schema)
    validator.validate(doc)  # type: ignore[attr-defined]


def reset_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def listening_socket(host: str = "127.0.0.1", port: int = 0, backlog: int = 4096) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def assert_closed_by_peer(sock: socket.socket) -> None:
    """The forwarder ended the connection: end of file, or a reset (both are prompt)."""
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass


def assert_closed_on_connect(sock: socket.socket, host: str, port: int) -> None:
    """Connects and sees the forwarder end the connection. Its reset may come so soon
    that connect() itself reports it, before this thread polled the handshake."""
    sock.settimeout(5)
    with sock:
        try:
            sock.connect((host, port))
        except ConnectionResetError:
            return
        assert_closed_by_peer(sock)


def ping(sock: socket.socket, host: str, port: int, data: bytes = b"ping") -> bytes:
    """Connects `sock` (made in whichever namespace), sends `data`, returns the answer."""
    sock.settimeout(5)
    try:
        sock.connect((host, port))
        sock.sendall(data)
        return sock.recv(len(data))
    finally:
        sock.close()


def echo_round_trip(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A connection through the forwarder that has proved itself with one echoed byte."""
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(b"1")
    assert sock.recv(1) == b"1"
    return sock


def send_and_read_all(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data` through a forwarder, half-closes, and reads until the far end closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := client.recv(65536):
            got += chunk
        return got


def imported_modules(importtime_stderr: str) -> set[str]:
    """The modules a `python -X importtime` run loaded, from its stderr."""
    return {line.split("|")[-1].strip() for line in importtime_stderr.splitlines() if "|" in line}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """An asyncio loop in a thread that runs test servers on given listening sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.AbstractServer] = []

    def serve(self, handler: Handler, sock: socket.socket | None = None) -> int:
        sock = sock or listening_socket()

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(handler, sock=sock, limit=1 << 20, backlog=4096)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)
        self.servers.append(server)
        return int(sock.getsockname()[1])

    def stop_serving(self) -> None:
        """Closes every server, on the servers' own loop (asyncio is not thread-safe)."""

        async def close() -> None:
            for s in self.servers:
                s.close()
            self.servers.clear()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)

    def close(self) -> None:
        async def stop() -> None:
            for s in self.servers:
                s.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def reply_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads to end of file, then answers: works only if half-close passed through."""
    data = await reader.read()
    writer.write(b"got %d bytes: %s" % (len(data), data[:32]))
    await writer.drain()
    writer.close()


def greet_and_half_close(received: list[bytes]) -> Handler:
    """A server that speaks first, shuts its write side, then still reads the client."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        writer.write_eof()
        received.append(await reader.read())
        writer.close()

    return handler


class ForwarderProcess:
    """`wslnet forward` as a user runs it, with its JSON log lines collected."""

    def __init__(
        self,
        *args: str,
        prefix: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        python_args: tuple[str, ...] = (),
    ) -> None:
        cmd = [*prefix, sys.executable, *python_args, "-m", "wslnet", "forward"]
        cmd += ["--log-format", "json", *args]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self.events: list[dict[str, object]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.raw.append(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    pass
                else:
                    if not any(e.get("event") == event.get("event") for e in self.events):
                        assert_schema(event, "log")  # the first line of each kind
                    self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_event(
        self, event: str, count: int = 1, timeout: float = 10.0, **match: object
    ) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    e
                    for e in self.events
                    if e.get("event") == event and all(e.get(k) == v for k, v in match.items())
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no {count}x {event} {match} in log:\n{''.join(self.raw)[-4000:]}"
                    )
                self._cond.wait(min(left, 0.2))

    def wait_line(self, text: str, timeout: float = 10.0) -> str:
        """The first raw log line containing `text` (for the text log format)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.raw:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {text!r} in log:\n{''.join(self.raw)[-4000:]}")
                self._cond.wait(min(left, 0.2))

    def started(self) -> ForwarderProcess:
        self.wait_event("started")
        return self

    @property
    def ports(self) -> list[int]:
        """The port of each rule (a rule may listen on 127.0.0.1 and ::1, same port)."""
        self.wait_event("started")
        by_rule: dict[object, int] = {}
        for e in self.wait_event("listening"):
            by_rule.setdefault(e["rule"], int(str(e["listen"]).rsplit(":", 1)[1]))
        return list(by_rule.values())

    @property
    def port(self) -> int:
        return self.ports[0]

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fds(self) -> dict[int, str]:
        """Each open descriptor and what it is (socket:[inode], a path): what a leak is."""
        found = {}
        for name in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                found[int(name)] = os.readlink(f"/proc/{self.proc.pid}/fd/{name}")
            except OSError:  # closed meanwhile
                pass
        return found

    def settled_fd_count(self, within: float = 3.0) -> int:
        """The descriptor count once start-up's own short-lived ones (the target probe's
        socket, the registration file) are closed: the same in three readings in a row."""
        seen: list[int] = []
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            seen.append(self.fd_count())
            if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]:
                break
            time.sleep(0.05)
        return seen[-1]

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def log_text(self) -> str:
        with self._cond:
            return "".join(self.raw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()


@contextlib.contextmanager
def forwarder(
    *args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[ForwarderProcess]:
    fwd = ForwarderProcess(*args, prefix=prefix, env=env)
    try:
        yield fwd.started()
    finally:
        fwd.stop()


def run_cli(
    *args: str, timeout: float = 20.0, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "wslnet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
