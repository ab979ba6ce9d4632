"""The thin shell that carries out a batch: writes the script where the side that runs it
can read it, runs it through system.py, reads the results back. Every decision (what to
run, how to quote it, what the results mean) is in script.py."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from wslnet import system
from wslnet.check.fix import script
from wslnet.check.fix.plan import Batch

ELEVATED_TIMEOUT = 600.0  # the user reads the UAC prompt; the actions themselves are quick


class Unreachable(Exception):
    """The side a batch must run on cannot be reached from here (said in its words)."""


def _windows_folder() -> tuple[Path, str]:
    """A folder of the Windows user's that Windows can read: (as seen here, as Windows
    names it). Natively %TEMP%; from WSL %UserProfile%\\AppData\\Local\\Temp via /mnt/c,
    so the elevated PowerShell reads it from a folder only the user may write to."""
    if sys.platform == "win32":
        folder = Path(tempfile.gettempdir())
        return folder, str(folder)
    off = system.interop_off()
    if off is not None:
        raise Unreachable(f"cannot run Windows programs from here: {off}")
    profile = system.windows_userprofile()
    if profile is None:
        raise Unreachable("cannot find your Windows user folder (%UserProfile%) for the script")
    folder = Path(profile) / "AppData" / "Local" / "Temp"
    folder.mkdir(parents=True, exist_ok=True)
    name = system.run(["wslpath", "-w", str(folder)], timeout=3)
    if not name:
        raise Unreachable(f"wslpath cannot name {folder} for Windows")
    return folder, name.strip()


def _run_windows(batch: Batch) -> list[str | None]:
    here, there = _windows_folder()
    stem = f"wslnet-fix-{secrets.token_hex(4)}"
    script_file, log_file = here / f"{stem}.ps1", here / f"{stem}.log"
    text = script.powershell_script(batch.actions, f"{there}\\{stem}.log")
    # UTF-8 with a BOM: Windows PowerShell 5.1 reads a BOM-less script in the ANSI code
    # page, which would mangle any non-ASCII name in it.
    script_file.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    path = f"{there}\\{stem}.ps1"
    argv = script.elevated(path) if batch.where == "windows-admin" else script.as_user(path)
    try:
        code, _, err = system.execute(argv, ELEVATED_TIMEOUT)
        log = system.read_text(log_file) or ""
    finally:
        for f in (script_file, log_file):
            f.unlink(missing_ok=True)
    missing = "did not run"
    if not log.strip():
        if code == 127:
            missing = "powershell.exe not found"
        elif batch.where == "windows-admin":
            first = err.strip().splitlines()[0] if err.strip() else f"exit code {code}"
            missing = f"the Administrator prompt was declined or failed ({first})"
        else:
            missing = f"PowerShell did not run the script (exit code {code})"
    return script.results(log, len(batch.actions), missing)


def _run_here(batch: Batch) -> list[str | None]:
    if sys.platform == "win32":
        raise Unreachable("these commands run inside WSL, not on Windows")
    is_root = os.geteuid() == 0
    argv = script.sh_argv(script.sh_script(batch.actions), batch.where == "here-root", is_root)
    code, out, err = system.execute(argv, ELEVATED_TIMEOUT)
    why = err.strip().splitlines()[0] if err.strip() else f"exit code {code}"
    return script.results(out, len(batch.actions), f"did not run ({why})")


def run(batch: Batch) -> list[str | None]:
    """Per action of the batch: None when it worked, else why not."""
    try:
        if batch.where.startswith("windows"):
            return _run_windows(batch)
        return _run_here(batch)
    except Unreachable as exc:
        return [str(exc)] * len(batch.actions)
    except OSError as exc:
        return [f"{exc.strerror or exc}"] * len(batch.actions)


def shutdown() -> str | None:
    """Runs `wsl --shutdown`; None when it worked, else why not."""
    try:
        code, _, err = system.execute(script.shutdown_argv(), 60.0)
    except OSError as exc:
        return f"{exc.strerror or exc}"
    if code == 0:
        return None
    return "wsl.exe not found" if code == 127 else (err.strip() or f"exit code {code}")


def read_journal(path: Path) -> str:
    return system.read_text(path) or ""


def append_journal(path: Path, line: str) -> None:
    """Appended, never rewritten: an interrupted write loses at most its own line."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
