"""`wslnet service`: run the forwarder at logon and keep it running.

On Windows a Task Scheduler task for the current user (no Administrator needed), run by
pythonw.exe (no console window), restarted on failure, created with `schtasks.exe
/Create /XML`. In WSL or Linux a systemd user unit. The task and the unit are made by
pure functions; installing runs the platform's own tool.
"""

from __future__ import annotations

import ntpath
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from wslnet import system
from wslnet.errors import WslnetError

Kind = Literal["task", "systemd"]
NAME = "wslnet-forward"
UNIT = f"{NAME}.service"


def default_kind() -> Kind:
    return "task" if sys.platform == "win32" else "systemd"


def windowless_python(python: str) -> str:
    """pythonw.exe beside python.exe: the same interpreter, without a console window."""
    windows = "\\" in python  # a Windows path, wherever this runs
    folder, name = ntpath.split(python) if windows else os.path.split(python)
    if name.lower() in ("python.exe", "python3.exe"):
        return (
            ntpath.join(folder, "pythonw.exe") if windows else os.path.join(folder, "pythonw.exe")
        )
    return python


def task_xml(python: str, config: Path, user: str | None = None) -> str:
    """A Task Scheduler task: at logon of `user` (or any user), no time limit, restarted
    every minute after a failure, not stopped on battery."""
    command = escape(windowless_python(python))
    args = escape(f'-m wslnet forward --config "{config}"')
    user_xml = f"<UserId>{escape(user)}</UserId>" if user else ""
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>wslnet forward: ports between Windows and WSL</Description>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger><Enabled>true</Enabled>{user_xml}</LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <LogonType>InteractiveToken</LogonType><RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec><Command>{command}</Command><Arguments>{args}</Arguments></Exec>
  </Actions>
</Task>
"""


def systemd_unit(python: str, config: Path) -> str:
    """A systemd user unit: started with the user's session, restarted on failure;
    SIGTERM drains connections (--drain) before the forwarder exits."""
    return f"""[Unit]
Description=wslnet forward: ports between Windows and WSL
After=network-online.target

[Service]
ExecStart={python} -m wslnet forward --config {config}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5

[Install]
WantedBy=default.target
"""


@dataclass(frozen=True)
class ServiceState:
    installed: bool
    running: bool | None  # None: the tool could not tell
    detail: str


def _unit_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user" / UNIT


def _run(tool: str, args: list[str]) -> tuple[int, str, str]:
    code, out, err = system.execute([tool, *args], timeout=20.0)
    if code == 127:
        raise WslnetError(f"{tool} not found: it is what installs the service here")
    return code, out, err


def install(kind: Kind, config: Path, python: str | None = None) -> str:
    python = python or sys.executable
    if kind == "task":
        xml = task_xml(python, config, system.env("USERNAME"))
        with tempfile.NamedTemporaryFile("wb", suffix=".xml", delete=False) as f:
            f.write(xml.encode("utf-16"))  # what schtasks reads: UTF-16 with a BOM
        try:
            code, out, err = _run("schtasks.exe", ["/Create", "/TN", NAME, "/XML", f.name, "/F"])
        finally:
            os.unlink(f.name)
        if code != 0:
            raise WslnetError(f"schtasks.exe /Create failed: {(err or out).strip()}")
        return f"installed: the task {NAME} starts `wslnet forward --config {config}` at logon"
    path = _unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(systemd_unit(python, config))
    for args in (["--user", "daemon-reload"], ["--user", "enable", "--now", UNIT]):
        code, out, err = _run("systemctl", args)
        if code != 0:
            raise WslnetError(f"systemctl {' '.join(args)} failed: {(err or out).strip()}")
    return f"installed: {path} (systemctl --user status {UNIT})"


def uninstall(kind: Kind) -> str:
    if kind == "task":
        code, out, err = _run("schtasks.exe", ["/Delete", "/TN", NAME, "/F"])
        if code != 0:
            raise WslnetError(f"schtasks.exe /Delete failed: {(err or out).strip()}")
        return f"removed the task {NAME}"
    _run("systemctl", ["--user", "disable", "--now", UNIT])
    path = _unit_path()
    path.unlink(missing_ok=True)
    _run("systemctl", ["--user", "daemon-reload"])
    return f"removed {path}"


def state(kind: Kind) -> ServiceState:
    if kind == "task":
        code, out, _ = _run("schtasks.exe", ["/Query", "/TN", NAME, "/FO", "CSV", "/NH"])
        if code != 0:
            return ServiceState(False, None, f"no task {NAME}")
        fields = [f.strip('"') for f in out.strip().split('","')]
        status = fields[-1].strip('"') if fields else "?"
        return ServiceState(True, status.lower() == "running", f"task {NAME}: {status}")
    enabled_code, enabled, _ = _run("systemctl", ["--user", "is-enabled", UNIT])
    active_code, active, _ = _run("systemctl", ["--user", "is-active", UNIT])
    installed = enabled_code == 0 or _unit_path().exists()
    detail = f"{UNIT}: {enabled.strip() or 'not installed'}, {active.strip() or 'inactive'}"
    return ServiceState(installed, active_code == 0, detail)
