"""`wslnet forward` started with descriptors 0-2 closed (a service manager, `>&- 2>&-`):
it forwards, and SIGTERM stops it cleanly. With uvloop, libuv asserts fd > 2 for what it
closes: once the log file or an epoll took 0-2, SIGTERM used to abort the process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import send_and_read_all

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX descriptors and uvloop")


def echo_once(server: socket.socket) -> None:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def close_std_fds() -> None:
    for fd in (0, 1, 2):
        os.close(fd)


def listening_port(log: Path, proc: subprocess.Popen[bytes]) -> int:
    for _ in range(200):
        if log.exists():
            for line in log.read_text().splitlines():
                event = json.loads(line)
                if event["event"] == "listening":
                    return int(str(event["listen"]).rsplit(":", 1)[1])
        assert proc.poll() is None, f"wslnet forward ended: {proc.returncode}"
        time.sleep(0.05)
    raise AssertionError("wslnet forward never said where it listens")


def test_forward_with_std_fds_closed_forwards_and_stops_on_sigterm(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=echo_once, args=(server,), daemon=True).start()
    log = tmp_path / "forward.log"
    rule = f"127.0.0.1:0=127.0.0.1:{server.getsockname()[1]}"
    argv = [sys.executable, "-m", "wslnet", "forward", rule, "--loop", "uvloop",
            "--log-format", "json", "--log-file", str(log)]  # fmt: skip
    proc = subprocess.Popen(argv, preexec_fn=close_std_fds)
    try:
        port = listening_port(log, proc)
        payload = os.urandom(200_000)
        assert send_and_read_all(port, payload, timeout=10) == payload
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[-1] == "stopped"
