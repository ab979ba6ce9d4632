"""`wslnet service`: the task and unit texts (pure), and installation through fake
schtasks.exe, powershell.exe and systemctl on PATH that record their arguments and the
XML given. The fakes answer as Windows does: a task's state as the TASK_STATE number
(taskschd.h), the Status column never read because schtasks translates it."""

from __future__ import annotations

import os
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from wslnet import service, system
from wslnet.cli import cli
from wslnet.errors import UsageError

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
CONFIG = '[[forward]]\nlisten = "8080"\ntarget = "127.0.0.1:3000"\n'

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the fake schtasks.exe and systemctl are shell scripts"
)


def task(xml: str) -> ET.Element:
    return ET.fromstring(xml.replace('encoding="UTF-16"', ""))


def test_the_task_runs_windowless_at_logon_and_restarts_on_failure() -> None:
    config = Path(r"C:\Users\First Last\AppData\Roaming\wslnet\forward.toml")
    args = service.forward_args(config, service.SERVICE_API)
    root = task(service.task_xml(r"C:\Py\pythonw.exe", args, "me"))
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == r"C:\Py\pythonw.exe"
    assert root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS) == (
        r'-m wslnet forward --config "C:\Users\First Last\AppData\Roaming\wslnet\forward.toml"'
        " --api 127.0.0.1:0"
    )
    assert root.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=NS) == "me"
    assert root.findtext("t:Settings/t:RestartOnFailure/t:Interval", namespaces=NS) == "PT1M"
    # The schema's Count is an unsignedByte from 1: 999 made schtasks refuse the task.
    count = root.findtext("t:Settings/t:RestartOnFailure/t:Count", namespaces=NS)
    assert count is not None and 1 <= int(count) <= 255
    assert root.findtext("t:Settings/t:ExecutionTimeLimit", namespaces=NS) == "PT0S"
    assert root.findtext("t:Principals/t:Principal/t:RunLevel", namespaces=NS) == "LeastPrivilege"


@pytest.mark.parametrize(
    ("python", "existing", "windowless"),
    [
        (r"C:\Py\python.exe", {r"C:\Py\pythonw.exe"}, r"C:\Py\pythonw.exe"),
        (r"C:\Py\python3.exe", {r"C:\Py\pythonw.exe"}, r"C:\Py\pythonw.exe"),
        (
            r"C:\WindowsApps\python3.12.exe",
            {r"C:\WindowsApps\pythonw3.12.exe", r"C:\WindowsApps\pythonw.exe"},
            r"C:\WindowsApps\pythonw3.12.exe",
        ),
        (r"C:\Py\PYTHON3.13.EXE", {r"C:\Py\pythonw.exe"}, r"C:\Py\pythonw.exe"),
        (r"C:\Windows\py.exe", {r"C:\Windows\pyw.exe"}, r"C:\Windows\pyw.exe"),
        (r"C:\venv\Scripts\pythonw.exe", set(), r"C:\venv\Scripts\pythonw.exe"),
        (r"C:\Py\python.exe", set(), None),  # an embeddable build without pythonw
        (r"C:\tools\wslnet.exe", {r"C:\tools\pythonw.exe"}, None),
    ],
)
def test_the_windowless_python_is_found_beside_any_windows_python(
    python: str, existing: set[str], windowless: str | None
) -> None:
    assert service.windowless_python(python, existing.__contains__) == windowless


def test_the_systemd_unit_quotes_and_escapes_every_word() -> None:
    config = Path('/mnt/c/Users/First Last/100%$HOME\\x"q/forward.toml')
    unit = service.systemd_unit("/usr/bin/python3", service.forward_args(config, None))
    exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    assert exec_start == (
        'ExecStart="/usr/bin/python3" "-m" "wslnet" "forward" "--config" '
        '"/mnt/c/Users/First Last/100%%$$HOME\\\\x\\"q/forward.toml"'
    )
    # What systemd does with it: % and $ undoubled, then C unquoting, as shlex splits.
    words = shlex.split(exec_start.split("=", 1)[1].replace("%%", "%").replace("$$", "$"))
    assert words[-1] == str(config)
    assert "Restart=on-failure" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit


def test_a_newline_cannot_go_into_a_unit() -> None:
    with pytest.raises(UsageError, match="control character"):
        service.systemd_unit("/usr/bin/python3", ["--config", "/tmp/a\nExecStartPre=/bin/evil"])


FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
for a in "$@"; do case "$a" in *.xml) cp "$a" "{dir}/given.xml" ;; esac; done
case "$*" in
  *"/Query"*) [ -e "{dir}/no-task" ] && exit 1; echo 'Folder: \\\\' ;;
  *Get-ScheduledTask*) cat "{dir}/task-state" ;;
  *show-environment*) [ -e "{dir}/no-systemd" ] && exit 1; echo HOME=/home/me ;;
  *"enable --now"*) [ -e "{dir}/enable-fails" ] && {{ echo "Failed to enable" >&2; exit 1; }} ;;
  *is-enabled*) echo enabled ;;
  *is-active*) echo active ;;
esac
exit 0
"""


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("schtasks.exe", "systemctl", "powershell.exe"):
        (bin_dir / name).write_text(FAKE.format(log=tmp_path / "calls.txt", dir=tmp_path))
        (bin_dir / name).chmod(0o755)
    (tmp_path / "task-state").write_text("4\r\n")  # TASK_STATE_RUNNING, as powershell prints it
    (tmp_path / "forward.toml").write_text(CONFIG)
    return tmp_path


def run(tools: Path, *args: str) -> tuple[int, str]:
    env = {"PATH": f"{tools / 'bin'}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tools / "cfg"),
           "USERNAME": "me", "XDG_RUNTIME_DIR": str(tools / "run")}  # fmt: skip
    res = CliRunner().invoke(cli, ["service", *args], env=env)
    return res.exit_code, res.output


def calls(tools: Path) -> list[str]:
    path = tools / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_install_status_uninstall_a_windows_task(tools: Path) -> None:
    config = str(tools / "forward.toml")
    code, out = run(tools, "install", "--kind", "task", "--config", config)
    assert code == 0 and out.startswith("installed: the task wslnet-forward")
    xml_file = calls(tools)[0].split()[-2]
    assert calls(tools)[0] == f"schtasks.exe /Create /TN wslnet-forward /XML {xml_file} /F"
    given = (tools / "given.xml").read_bytes()
    assert given.startswith(b"\xff\xfe")  # UTF-16 with its BOM, as schtasks reads it
    assert f"--config {config} --api 127.0.0.1:0" in given.decode("utf-16")
    code, out = run(tools, "status", "--kind", "task")
    assert code == 0 and out.splitlines()[0] == "installed, running (task wslnet-forward, state 4)"
    (tools / "task-state").write_text("3\r\n")  # TASK_STATE_READY: installed, not running
    code, out = run(tools, "status", "--kind", "task")
    assert out.splitlines()[0] == "installed, not running (task wslnet-forward, state 3)"
    code, out = run(tools, "uninstall", "--kind", "task")
    assert code == 0 and out.strip() == "removed the task wslnet-forward"
    assert calls(tools)[-1] == "schtasks.exe /Delete /TN wslnet-forward /F"
    (tools / "no-task").touch()
    code, out = run(tools, "status", "--kind", "task")
    assert code == 1 and out.splitlines()[0] == "not installed (no task wslnet-forward)"


def test_install_and_uninstall_a_systemd_user_unit(tools: Path) -> None:
    code, out = run(tools, "install", "--kind", "systemd", "--config", str(tools / "forward.toml"))
    unit = tools / "cfg" / "systemd" / "user" / "wslnet-forward.service"
    assert code == 0 and unit.exists(), out
    assert f'"--config" "{tools}/forward.toml" "--api" "127.0.0.1:0"' in unit.read_text()
    assert [c.split(" ", 1)[1] for c in calls(tools)] == [
        "--user show-environment",
        "--user daemon-reload",
        "--user enable --now wslnet-forward.service",
    ]
    code, out = run(tools, "status", "--kind", "systemd")
    assert out.splitlines()[0] == "installed, running (wslnet-forward.service: enabled, active)"
    code, out = run(tools, "uninstall", "--kind", "systemd")
    assert code == 0 and not unit.exists()


def test_a_config_that_chooses_its_own_api_is_left_to_choose(tools: Path) -> None:
    for setting, expect in (('api = "7171"', "--config"), ("api = false", "--config")):
        (tools / "forward.toml").write_text(f"{setting}\n{CONFIG}")
        code, out = run(
            tools, "install", "--kind", "systemd", "--config", str(tools / "forward.toml")
        )
        text = (tools / "cfg" / "systemd" / "user" / "wslnet-forward.service").read_text()
        assert code == 0 and expect in text and "--api" not in text, (setting, out)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "no such config file"),
        ("[[forward]]\nlisten = 8080\nbogus = 1\n", "unknown field 'bogus'"),
        ("api = true\n", "setting 'api' must be"),
    ],
)
def test_a_config_that_does_not_parse_installs_nothing(
    tools: Path, content: str | None, why: str
) -> None:
    config = tools / "broken.toml"
    if content is not None:
        config.write_text(content)
    for kind in ("task", "systemd"):
        code, out = run(tools, "install", "--kind", kind, "--config", str(config))
        assert code == 2 and why in out and "Traceback" not in out
    assert calls(tools) == [] and not (tools / "cfg").exists()


def test_without_systemd_in_wsl_it_says_how_to_enable_it_and_writes_nothing(
    tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tools / "no-systemd").touch()
    real_exists = system.exists
    monkeypatch.setattr(
        system, "exists", lambda p: False if p == "/run/systemd/system" else real_exists(p)
    )
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    code, out = run(tools, "install", "--kind", "systemd", "--config", str(tools / "forward.toml"))
    assert code == 1
    assert out.strip() == (
        "wslnet: systemd is not running here: in WSL, add the lines `[boot]` and "
        "`systemd=true` to /etc/wsl.conf, run `wsl --shutdown` in Windows, then open WSL again"
    )
    assert not (tools / "cfg").exists()


def test_a_failed_enable_takes_the_unit_back(tools: Path) -> None:
    (tools / "enable-fails").touch()
    code, out = run(tools, "install", "--kind", "systemd", "--config", str(tools / "forward.toml"))
    assert code == 1 and "systemctl --user enable --now wslnet-forward.service failed" in out
    assert not (tools / "cfg" / "systemd" / "user" / "wslnet-forward.service").exists()
    assert calls(tools)[-1] == "systemctl --user daemon-reload"


def test_install_without_the_tool_says_so(tmp_path: Path) -> None:
    (tmp_path / "forward.toml").write_text(CONFIG)
    res = CliRunner().invoke(
        cli,
        ["service", "install", "--kind", "task", "--config", str(tmp_path / "forward.toml")],
        env={"PATH": str(tmp_path)},
    )
    assert res.exit_code == 1
    assert (
        res.output.strip() == "wslnet: schtasks.exe not found: it is what installs the service here"
    )
