"""`wslnet service`: the task and unit texts (pure), and installation through fake
schtasks.exe and systemctl on PATH that record their arguments and the XML given."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from wslnet import service
from wslnet.cli import cli

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the fake schtasks.exe and systemctl are shell scripts"
)


def test_the_task_runs_windowless_at_logon_and_restarts_on_failure() -> None:
    xml = service.task_xml(
        r"C:\Py\python.exe", Path(r"C:\Users\me\AppData\Roaming\wslnet\forward.toml"), "me"
    )
    root = ET.fromstring(xml.replace('encoding="UTF-16"', ""))
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == r"C:\Py\pythonw.exe"
    assert root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS) == (
        r'-m wslnet forward --config "C:\Users\me\AppData\Roaming\wslnet\forward.toml"'
    )
    assert root.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=NS) == "me"
    assert root.findtext("t:Settings/t:RestartOnFailure/t:Interval", namespaces=NS) == "PT1M"
    assert root.findtext("t:Settings/t:ExecutionTimeLimit", namespaces=NS) == "PT0S"
    assert root.findtext("t:Principals/t:Principal/t:RunLevel", namespaces=NS) == "LeastPrivilege"


def test_the_systemd_unit_restarts_and_reloads() -> None:
    unit = service.systemd_unit("/usr/bin/python3", Path("/home/me/.config/wslnet/forward.toml"))
    assert (
        "ExecStart=/usr/bin/python3 -m wslnet forward --config /home/me/.config/wslnet/forward.toml"
        in unit
    )
    assert "Restart=on-failure" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "WantedBy=default.target" in unit


FAKE = """#!/bin/sh
echo "$0 $*" >> "{log}"
for a in "$@"; do case "$a" in *.xml) cp "$a" "{dir}/given.xml" ;; esac; done
case "$*" in
  *"/Query"*) echo '"\\\\wslnet-forward","N/A","Running"' ;;
  *is-enabled*) echo enabled ;;
  *is-active*) echo active ;;
esac
"""


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("schtasks.exe", "systemctl"):
        (bin_dir / name).write_text(FAKE.format(log=tmp_path / "calls.txt", dir=tmp_path))
        (bin_dir / name).chmod(0o755)
    return tmp_path


def run(tools: Path, *args: str) -> tuple[int, str]:
    env = {"PATH": f"{tools / 'bin'}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tools / "cfg"),
           "USERNAME": "me", "XDG_RUNTIME_DIR": str(tools / "run")}  # fmt: skip
    res = CliRunner().invoke(cli, ["service", *args], env=env)
    return res.exit_code, res.output


def test_install_status_uninstall_a_windows_task(tools: Path) -> None:
    code, out = run(tools, "install", "--kind", "task", "--config", r"C:\me\forward.toml")
    assert code == 0 and out.startswith("installed: the task wslnet-forward")
    calls = (tools / "calls.txt").read_text().splitlines()
    assert calls[0].endswith(
        "schtasks.exe /Create /TN wslnet-forward /XML " + calls[0].split()[-2] + " /F"
    )
    given = (tools / "given.xml").read_bytes()
    assert given.startswith(b"\xff\xfe")  # UTF-16 with its BOM, as schtasks reads it
    assert r'--config "C:\me\forward.toml"' in given.decode("utf-16")
    code, out = run(tools, "status", "--kind", "task")
    assert code == 0 and out.splitlines()[0] == "task wslnet-forward: Running"
    code, out = run(tools, "uninstall", "--kind", "task")
    assert code == 0 and out.strip() == "removed the task wslnet-forward"
    assert (
        (tools / "calls.txt").read_text().splitlines()[-1].endswith("/Delete /TN wslnet-forward /F")
    )


def test_install_and_uninstall_a_systemd_user_unit(tools: Path) -> None:
    code, out = run(tools, "install", "--kind", "systemd", "--config", "/etc/fw.toml")
    unit = tools / "cfg" / "systemd" / "user" / "wslnet-forward.service"
    assert code == 0 and unit.exists() and "--config /etc/fw.toml" in unit.read_text()
    calls = [c.split(" ", 1)[1] for c in (tools / "calls.txt").read_text().splitlines()]
    assert calls == ["--user daemon-reload", "--user enable --now wslnet-forward.service"]
    code, out = run(tools, "status", "--kind", "systemd")
    assert out.splitlines()[0] == "wslnet-forward.service: enabled, active"
    code, out = run(tools, "uninstall", "--kind", "systemd")
    assert code == 0 and not unit.exists()


def test_install_without_the_tool_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["service", "install", "--kind", "task"], env={"PATH": str(tmp_path)}
    )
    assert res.exit_code == 1
    assert (
        res.output.strip() == "wslnet: schtasks.exe not found: it is what installs the service here"
    )
