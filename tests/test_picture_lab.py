"""The picture at the top of `wslnet check`, in the lab's WSL VM, compared line for line
with snapshot files (tests/snapshots): widths 80 and 120, and ASCII for a console whose
code page has no box drawing. The listeners belong to processes named node and uvicorn
(symlinks to Python: the kernel names a process after the file it ran)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import WSL_IP, Lab
from tests.scenarios import Vm, dns_server

pytestmark = pytest.mark.lab

SNAPSHOTS = Path(__file__).parent / "snapshots"
SERVE = """
import socket, sys, time
socks = []
for spec in sys.argv[1:]:
    kind, host, port = spec.split(",")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, int(port)))
    if kind == "tcp":
        s.listen(8)
    socks.append(s)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def vm(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    tmp = tmp_path_factory.mktemp("picture")
    procs = []
    for name, specs in (
        ("node", ["tcp,127.0.0.1,5173", "tcp,::1,5173"]),
        ("uvicorn", [f"tcp,{WSL_IP},8000", "udp,0.0.0.0,5353"]),
    ):
        exe = tmp / name
        exe.symlink_to(sys.executable)
        proc = subprocess.Popen(
            [*lab.prefix(lab.wsl), str(exe), "-c", SERVE, *specs],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        procs.append(proc)
    try:
        yield Vm(lab, tmp)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def picture(vm: Vm, **env: str) -> str:
    with dns_server(vm.lab, vm.lab.win, "198.18.0.1"):
        code, text, _, err = vm.run("check", "listeners", "host.address", env=env)
    assert code == 0, err
    return str(text).split("\n\n", 1)[0] + "\n"  # the picture ends at the first blank line


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("picture-80.txt", {"COLUMNS": "80"}),
        ("picture-120.txt", {"COLUMNS": "120"}),
        ("picture-ascii.txt", {"COLUMNS": "80", "PYTHONIOENCODING": "cp437"}),
    ],
)
def test_the_picture_matches_its_snapshot(vm: Vm, name: str, env: dict[str, str]) -> None:
    got = picture(vm, **env)
    if os.environ.get("WSLNET_UPDATE_SNAPSHOTS") == "1":
        (SNAPSHOTS / name).write_text(got, encoding="utf-8")
    assert got == (SNAPSHOTS / name).read_text(encoding="utf-8")
    assert all(len(line) <= int(env["COLUMNS"]) for line in got.splitlines())


def test_no_picture_and_json_have_none(vm: Vm) -> None:
    with dns_server(vm.lab, vm.lab.win, "198.18.0.1"):
        _, text, _, _ = vm.run("check", "listeners", "--no-picture")
    assert not str(text).startswith("Windows host")
    _, doc, _, _ = vm.run("check", "listeners", "--json")
    assert "findings" in doc and "Windows host" not in str(doc)
    time.sleep(0)


@pytest.mark.parametrize(
    "argv", [["check", "listeners"], ["check", "host.reach", "--host-port", "5432"]]
)
def test_a_run_without_what_the_picture_needs_draws_none(vm: Vm, argv: list[str]) -> None:
    """Not "Windows host ?" nor "(no listening ports)" while ports listen: no picture."""
    with dns_server(vm.lab, vm.lab.win, "198.18.0.1"):
        _, text, _, err = vm.run(*argv)
    first = str(text).splitlines()[0]
    assert first[:2] in ("! ", "✓ ", "✗ ", "• "), (first, err)
