"""The package as a user gets it: the wheel built from this tree, installed into a clean
virtual environment (as pipx does), runs, and carries its license, types and schemas."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, assert_schema

pytestmark = pytest.mark.lab  # builds and installs: network to the package index, a minute


def run(*argv: object, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def test_the_wheel_installs_into_a_clean_venv_and_its_commands_run(
    tmp_path: Path, netns: tuple[str, ...]
) -> None:
    dist = tmp_path / "dist"
    built = run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT, cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("wslnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wslnet/py.typed" in names and "wslnet/schemas/check.json" in names
    for page in ("dashboard.html", "dashboard.js", "dashboard.css", "favicon.svg"):
        assert f"wslnet/forward/control/{page}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"Requires-Dist: scapy>=2.5; sys_platform != 'win32'" in metadata
    assert b"Classifier: Operating System :: Microsoft :: Windows" in metadata

    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    installed = run(venv / "bin" / "pip", "install", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    wslnet = venv / "bin" / "wslnet"  # run from elsewhere: nothing from this tree is imported

    version = run(wslnet, "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, "wslnet, version 0.1.0\n")
    host = run(wslnet, "ip", "host", "--json", cwd=tmp_path, timeout=30)
    assert host.returncode in (0, 1), host.stderr
    assert_schema(json.loads(host.stdout), "ip")
    # In an empty network namespace: the DNS check must not query this machine's resolver.
    check = run(*netns, wslnet, "check", "--json", "--no-raw", cwd=tmp_path, timeout=60)
    assert check.returncode in (0, 1), check.stderr
    doc = json.loads(check.stdout)
    assert_schema(doc, "check")
    assert not [f for f in doc["findings"] if f["status"] == "crash"]
