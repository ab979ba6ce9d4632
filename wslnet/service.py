"""`wslnet service`: run the forwarder at logon and keep it running.

On Windows a Task Scheduler task for the current user (no Administrator needed), run by
pythonw.exe (no console window), restarted on failure, created with `schtasks.exe
/Create /XML`. In WSL or Linux a systemd user unit. The task and the unit are made by
pure functions; installing runs the platform's own tool, after checking that the config
parses and the service manager is there, and takes back what it wrote when a step fails.

The service serves the control API on a loopback port of its own (the token in the state
folder), so `wslnet status` and `wslnet dashboard` find it; `api = false` in the config
file turns that off, and `api = "PORT"` there chooses the port.
"""

from __future__ import annotations

import ntpath
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from wslnet import system
from wslnet.errors import UsageError, WslnetError

Kind = Literal["task", "systemd"]
NAME = "wslnet-forward"
UNIT = f"{NAME}.service"
SERVICE_API = "127.0.0.1:0"  # a free loopback port; the state file tells clients which
# Task Scheduler's restartType: Count is an unsignedByte with minInclusive 1, so 1-255
# (learn.microsoft.com, taskschedulerschema-count-restarttype-element); 999 is refused.
RESTART_COUNT = 255
# TASK_STATE (taskschd.h): UNKNOWN 0, DISABLED 1, QUEUED 2, READY 3, RUNNING 4. A number
# is the same in every Windows language; schtasks' Status column is translated.
TASK_RUNNING = 4
TASK_STATE_SCRIPT = f"[int](Get-ScheduledTask -TaskName '{NAME}' -ErrorAction Stop).State"

_PYTHON_EXE = re.compile(r"python(?P<version>[0-9.]*)\.exe", re.IGNORECASE)


def default_kind() -> Kind:
    return "task" if sys.platform == "win32" else "systemd"


def windowless_candidates(python: str) -> list[str]:
    """The windowless twins of a Windows Python, best first: python.exe, python3.exe,
    python3.12.exe (Store aliases and venvs have these) -> pythonw3.12.exe, pythonw.exe;
    py.exe (the launcher) -> pyw.exe. Anything else has none."""
    windows = "\\" in python  # a Windows path, wherever this runs
    join = ntpath.join if windows else os.path.join
    folder, name = ntpath.split(python) if windows else os.path.split(python)
    low = name.lower()
    if low.startswith("pythonw") or low == "pyw.exe":
        return [python]
    if low == "py.exe":
        return [join(folder, "pyw.exe")]
    m = _PYTHON_EXE.fullmatch(name)
    if m is None:
        return []
    names = [f"pythonw{m['version']}.exe", "pythonw.exe"] if m["version"] else ["pythonw.exe"]
    return [join(folder, n) for n in names]


def windowless_python(python: str, exists: Callable[[str], bool] | None = None) -> str | None:
    """The first windowless twin that exists (every candidate counts as existing when
    this is not Windows and cannot look), or None."""
    candidates = windowless_candidates(python)
    if candidates == [python]:  # already windowless (and running)
        return python
    if exists is None:
        exists = os.path.exists if sys.platform == "win32" else (lambda _path: True)
    return next((c for c in candidates if exists(c)), None)


def forward_args(config: Path, api: str | None) -> list[str]:
    args = ["-m", "wslnet", "forward", "--config", str(config)]
    return [*args, "--api", api] if api else args


def task_xml(command: str, args: list[str], user: str | None = None) -> str:
    """A Task Scheduler task: at logon of `user` (or any user), no time limit, restarted
    every minute after a failure, not stopped on battery."""
    # One string that CommandLineToArgvW splits back into `args` (list2cmdline's rules).
    arguments = subprocess.list2cmdline(args)
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
    <RestartOnFailure><Interval>PT1M</Interval><Count>{RESTART_COUNT}</Count></RestartOnFailure>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec><Command>{escape(command)}</Command><Arguments>{escape(arguments)}</Arguments></Exec>
  </Actions>
</Task>
"""


def systemd_quote(arg: str) -> str:
    """One word of an ExecStart= line, quoted per systemd.syntax(7) and systemd.service(5):
    in double quotes, `\\` and `"` escaped; `%` doubled (specifiers such as %h expand) and
    `$` doubled (environment variables expand). A control character cannot be written
    into a unit line at all: UsageError."""
    if any(ord(c) < 32 or ord(c) == 127 for c in arg):
        raise UsageError(f"{arg!r}: a control character (a newline?) cannot go into a unit file")
    body = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{body}"'


def systemd_unit(python: str, args: list[str]) -> str:
    """A systemd user unit: started with the user's session, restarted on failure;
    SIGTERM drains connections (--drain) before the forwarder exits."""
    exec_start = " ".join(systemd_quote(a) for a in [python, *args])
    return f"""[Unit]
Description=wslnet forward: ports between Windows and WSL
After=network-online.target

[Service]
ExecStart={exec_start}
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

    def words(self) -> str:
        """What `service status` says first: installed or not, then running or not."""
        if not self.installed:
            return f"not installed ({self.detail})"
        running = {True: "running", False: "not running", None: "running: cannot tell"}
        return f"installed, {running[self.running]} ({self.detail})"


def _unit_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user" / UNIT


def _run(tool: str, args: list[str]) -> tuple[int, str, str]:
    code, out, err = system.execute([tool, *args], timeout=20.0)
    if code == 127:
        raise WslnetError(f"{tool} not found: it is what installs the service here")
    return code, out, err


def checked_config(config: Path) -> str | None:
    """The config must exist and parse before a service that restarts on failure runs
    it: a broken one would fail every few seconds for ever. Returns the service's --api
    (None when the file chooses: `api = ...` there)."""
    from wslnet.forward.control.configfile import load

    if not config.is_file():
        raise UsageError(
            f"{config}: no such config file; write one first (see `wslnet forward --help`)"
        )
    file = load(config)
    return None if "api" in file.settings or file.api_off else SERVICE_API


def install(kind: Kind, config: Path, python: str | None = None) -> str:
    config = config.absolute() if kind == "systemd" else config
    api = checked_config(config)
    args = forward_args(config, api)
    python = python or sys.executable
    if kind == "task":
        return _install_task(python, args, config)
    return _install_unit(python, args)


def _install_task(python: str, args: list[str], config: Path) -> str:
    command = windowless_python(python)
    note = ""
    if command is None:
        command = python
        note = f" (no pythonw.exe beside {python}: the task opens a console window)"
    xml = task_xml(command, args, system.env("USERNAME"))
    with tempfile.NamedTemporaryFile("wb", suffix=".xml", delete=False) as f:
        f.write(xml.encode("utf-16"))  # what schtasks reads: UTF-16 with a BOM
    try:
        code, out, err = _run("schtasks.exe", ["/Create", "/TN", NAME, "/XML", f.name, "/F"])
    finally:
        os.unlink(f.name)
    if code != 0:
        raise WslnetError(f"schtasks.exe /Create failed: {(err or out).strip()}")
    return f"installed: the task {NAME} starts `wslnet forward --config {config}` at logon{note}"


def _user_systemd() -> None:
    """A systemd user manager must answer before a unit is written for it."""
    code, _, _ = _run("systemctl", ["--user", "show-environment"])
    if code == 0:
        return
    if not system.exists("/run/systemd/system"):  # sd_booted(3): PID 1 is not systemd
        in_wsl = system.exists("/proc/sys/fs/binfmt_misc/WSLInterop") or system.env(
            "WSL_DISTRO_NAME"
        )
        how = (
            "in WSL, add the lines `[boot]` and `systemd=true` to /etc/wsl.conf, run "
            "`wsl --shutdown` in Windows, then open WSL again"
            if in_wsl
            else "boot with systemd, or start `wslnet forward --config ...` another way"
        )
        raise WslnetError(f"systemd is not running here: {how}")
    raise WslnetError(
        "no systemd user manager answers (systemctl --user failed): log in to a user "
        "session, or keep one running with `loginctl enable-linger`"
    )


def _install_unit(python: str, args: list[str]) -> str:
    _user_systemd()
    text = systemd_unit(os.path.abspath(python), args)
    path = _unit_path()
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for step in (["--user", "daemon-reload"], ["--user", "enable", "--now", UNIT]):
        code, out, err = _run("systemctl", step)
        if code != 0:
            if not existed:  # take back what this install wrote
                _run("systemctl", ["--user", "disable", UNIT])
                path.unlink(missing_ok=True)
                _run("systemctl", ["--user", "daemon-reload"])
            raise WslnetError(f"systemctl {' '.join(step)} failed: {(err or out).strip()}")
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
        code, _, _ = _run("schtasks.exe", ["/Query", "/TN", NAME])
        if code != 0:
            return ServiceState(False, None, f"no task {NAME}")
        code, out, err = system.windows_exe(
            "powershell.exe", ["-NoProfile", "-NonInteractive", "-Command", TASK_STATE_SCRIPT]
        )
        number = out.strip()
        if code != 0 or not number.isdigit():
            why = (err or out).strip().splitlines()[:1] or [f"exit {code}"]
            return ServiceState(True, None, f"task {NAME}; its state is unknown: {why[0]}")
        return ServiceState(True, int(number) == TASK_RUNNING, f"task {NAME}, state {number}")
    enabled_code, enabled, _ = _run("systemctl", ["--user", "is-enabled", UNIT])
    active_code, active, _ = _run("systemctl", ["--user", "is-active", UNIT])
    installed = enabled_code == 0 or _unit_path().exists()
    detail = f"{UNIT}: {enabled.strip() or 'not installed'}, {active.strip() or 'inactive'}"
    return ServiceState(installed, active_code == 0, detail)
