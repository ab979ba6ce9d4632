"""Where wslnet keeps its files: one home for each location, so the forwarder that
writes or reads a file and the doctor that looks for it agree. No I/O beyond the
environment variables that name the folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

FORWARD_CONFIG = Path("wslnet") / "forward.toml"


def roaming(profile: Path) -> Path:
    """%APPDATA% of a Windows user profile (the default when APPDATA is not set)."""
    return profile / "AppData" / "Roaming"


def forward_config(windows: bool | None = None) -> Path:
    """%APPDATA%\\wslnet\\forward.toml on Windows, else the XDG config folder."""
    if windows is None:
        windows = sys.platform == "win32"
    if windows:
        base = Path(os.environ.get("APPDATA") or roaming(Path.home()))
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / FORWARD_CONFIG


def forward_config_of(profile: Path) -> Path:
    """The Windows forwarder's file seen from WSL, given %UserProfile% (through /mnt/c)."""
    return roaming(profile) / FORWARD_CONFIG


def state_home(windows: bool | None = None) -> Path:
    """What must outlive a reboot (the --fix journal): %LOCALAPPDATA%\\wslnet on Windows,
    else $XDG_STATE_HOME/wslnet (~/.local/state/wslnet)."""
    if windows is None:
        windows = sys.platform == "win32"
    if windows:
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "wslnet"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "wslnet"


def fix_journal() -> Path:
    return state_home() / "fix-journal.jsonl"
