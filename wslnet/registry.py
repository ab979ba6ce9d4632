"""Running forwarders, as the state folder records them: each `wslnet forward` registers
there at start (forward-PID.json) and removes its file at exit. A leaf (standard library
only, nothing of the forwarder), so `wslnet status` and the doctor both read it. Only
files and folders that are this user's alone are trusted (issue 20)."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def state_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "wslnet"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "wslnet" if runtime else Path.home() / ".config" / "wslnet"


def distrust(path: Path) -> str | None:
    """Why a state file or folder must not be trusted (None: it is ours alone). Another
    user's file could name any URL and catch our token, or hand us theirs (issue 20)."""
    if sys.platform == "win32":
        return None  # ACLs, not modes: %LOCALAPPDATA% is the user's own
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None  # nothing there to trust or not: reading it says so
    except OSError as exc:
        return f"{path} is unreadable ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if st.st_uid != os.getuid():
        return f"{path} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"{path} is writable by others"
    return None


@dataclass(frozen=True)
class RegisteredRule:
    id: int
    proto: str
    rule: str
    target: str
    listen: tuple[tuple[str, int], ...]  # (host, port) as bound

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "listen": [list(x) for x in self.listen]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RegisteredRule:
        listen = tuple((str(h), int(p)) for h, p in doc["listen"])
        return cls(int(doc["id"]), str(doc["proto"]), str(doc["rule"]), str(doc["target"]), listen)


@dataclass(frozen=True)
class Registration:
    """A running forwarder as it registered at start: one private file per pid in the
    state folder, removed when it exits, so `wslnet status` and the doctor find every one."""

    pid: int
    started: float
    rules: tuple[RegisteredRule, ...]
    api: str | None = None
    token: str | None = None  # a generated API token (the file is private); never printed

    def as_json(self) -> dict[str, object]:
        rules = [r.as_json() for r in self.rules]
        return {"pid": self.pid, "started": self.started, "api": self.api, "rules": rules}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Registration:
        rules = tuple(RegisteredRule.from_json(r) for r in doc["rules"])
        api, token = doc.get("api"), doc.get("token")
        return cls(
            int(doc["pid"]), float(doc["started"]), rules,
            str(api) if api else None, str(token) if token else None,
        )  # fmt: skip


def registration_path(pid: int) -> Path:
    return state_dir() / f"forward-{pid}.json"


def running() -> list[Registration]:
    """Every registered forwarder still running, oldest first. A file whose pid has exited
    is removed; one that is not ours alone, or unreadable, is passed over."""
    from wslnet import system

    folder = state_dir()
    if not folder.is_dir() or distrust(folder) is not None:
        return []
    found = []
    for path in sorted(folder.glob("forward-*.json")):
        if distrust(path) is not None:
            continue
        try:
            reg = Registration.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
        if system.pid_alive(reg.pid):
            found.append(reg)
        else:
            path.unlink(missing_ok=True)  # a forwarder that was killed could not remove it
    return sorted(found, key=lambda r: r.started)
