"""Every exit code the README lists, run end to end (a real process, a real pipe)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

WSLNET = [sys.executable, "-m", "wslnet"]


def _env(tmp_path: Path) -> dict[str, str]:
    # A state folder of our own: no forwarder of this machine's is ever found.
    return {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "NO_COLOR": "1"}


def readme_codes() -> set[int]:
    table = (ROOT / "README.md").read_text().split("**Exit codes**", 1)[1].split("\n\n")[1]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}


def test_the_readme_lists_exactly_the_codes_wslnet_returns() -> None:
    assert readme_codes() == {0, 1, 2, 130, 141}


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WSLNET, *argv], env=_env(tmp_path), capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_exit_0_1_and_2(tmp_path: Path) -> None:
    ok = _run(["--version"], tmp_path)
    assert (ok.returncode, ok.stdout.split(",")[0]) == (0, "wslnet")
    nothing = _run(["status"], tmp_path)
    assert nothing.returncode == 1
    assert nothing.stdout.startswith("no forwarder is running")
    bad = _run(["check", "no-such-check"], tmp_path)
    assert bad.returncode == 2
    assert bad.stderr == (
        "wslnet: unknown check 'no-such-check'; `wslnet check --list` lists them\n"
    )


@pytest.mark.parametrize(
    "argv", [["check", "--list"], ["check", "--json", "--no-raw"], ["--help"], ["check", "--help"]]
)
def test_a_closed_pipe_ends_quietly_with_141(argv: list[str], tmp_path: Path) -> None:
    """`wslnet check | head -3`: the reader has gone before we write (its end is closed
    at once, so the first write fails, whatever the pipe's buffer holds)."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        [*WSLNET, *argv], env=_env(tmp_path), stdout=write, stderr=subprocess.PIPE,
        text=True, cwd=ROOT,
    )  # fmt: skip
    os.close(write)
    os.close(read)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, "")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    """`status` waits on an API that accepts and never answers; Ctrl+C ends it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(30)
        port = server.getsockname()[1]
        env = {**_env(tmp_path), "WSLNET_API_TOKEN": "t"}
        proc = subprocess.Popen(
            [*WSLNET, "status", "--api", str(port)], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            conn, _ = server.accept()  # it is now waiting for the answer
            conn.recv(1024)  # the request is sent: the client is reading
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            conn.close()
        finally:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "wslnet: aborted"
    assert "Traceback" not in err
