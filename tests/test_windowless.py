"""The forwarder without a console: started windowless (pythonw, a scheduled task) its
stderr is None, and the log goes to a file that rotates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, echo_round_trip, free_port
from wslnet.forward.core.log import RotatingFile

WINDOWLESS = """
import sys
sys.stderr = None  # what pythonw gives a program
from wslnet.cli import main
sys.argv = ["wslnet", "forward", *sys.argv[1:]]
main()
"""


@pytest.mark.lab  # a real forwarder process
def test_a_windowless_forwarder_logs_to_the_default_file(tmp_path: Path) -> None:
    from tests.helpers import ServerThread, echo

    servers = ServerThread()
    try:
        target = servers.serve(echo)
        port = free_port()
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "LOCALAPPDATA": str(tmp_path)}
        proc = subprocess.Popen(
            [sys.executable, "-c", WINDOWLESS, f"127.0.0.1:{port}=127.0.0.1:{target}"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        log = tmp_path / "wslnet" / "forward.log"
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and " started " not in (
                log.read_text() if log.exists() else ""
            ):
                time.sleep(0.05)
            echo_round_trip(port).close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            proc.kill()
        text = log.read_text()
        assert " started " in text and " conn " in text and " stopped" in text
    finally:
        servers.close()


def test_the_log_file_rotates_and_keeps_three(tmp_path: Path) -> None:
    path = tmp_path / "forward.log"
    f = RotatingFile(path, max_bytes=100, keep=3)
    for n in range(20):
        f.write(f"line {n:02d} " + "x" * 40 + "\n")
    f.flush()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["forward.log", "forward.log.1", "forward.log.2", "forward.log.3"]
    assert path.read_text().startswith("line 18")  # the newest lines
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
