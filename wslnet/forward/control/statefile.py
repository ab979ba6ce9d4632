"""The forwarder's side of the state folder: its registration (wslnet/registry.py reads
it), api.json with the API's URL, written privately; find_api for `wslnet dashboard`
(no aiohttp needed). Only files and folders that are this user's alone are read."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from wslnet.errors import WslnetError
from wslnet.registry import Registration, distrust, registration_path, state_dir

__all__ = ["ApiState", "find_api", "private_dir", "register", "state_dir", "write_private"]


@dataclass(frozen=True)
class ApiState:
    url: str
    token_file: Path | None  # None: the token came from WSLNET_API_TOKEN
    pid: int

    def as_json(self) -> str:
        token_file = str(self.token_file) if self.token_file else None
        return json.dumps({"url": self.url, "token_file": token_file, "pid": self.pid})


def private_dir(folder: Path) -> Path:
    """The state folder, made if missing; one that others may write to is tightened to
    0700 when it is ours and refused when it is not (they could swap files in it)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform == "win32":
        return folder  # ACLs, not modes: %LOCALAPPDATA% is the user's own
    st = folder.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise WslnetError(f"{folder} is not a directory; remove it so wslnet can make one")
    if st.st_mode & 0o022:
        if st.st_uid != os.getuid():
            raise WslnetError(
                f"{folder} is writable by others and not yours: remove it, or set "
                "XDG_RUNTIME_DIR to a private folder"
            )
        os.chmod(folder, 0o700)
    return folder


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read (0600 where modes exist), through a fresh
    temporary file: never through a link planted in its place, never with a stale mode."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    try:
        os.unlink(tmp)  # a stale one (any mode, or a symlink) is removed, not reused
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _trusted_text(path: Path) -> str:
    """The text of a state file whose folder and file are ours alone."""
    why = distrust(path.parent) or distrust(path)
    if why is not None:
        raise WslnetError(
            f"{why}: not trusted; remove it, or set XDG_RUNTIME_DIR to a private folder"
        )
    return path.read_text()


def register(reg: Registration) -> Path:
    path = registration_path(reg.pid)
    write_private(path, json.dumps({**reg.as_json(), "token": reg.token}))
    return path


def find_api() -> tuple[str, str]:
    """(url, token) of the forwarder that last started with --api, if it still runs."""
    from wslnet import system

    state = state_dir() / "api.json"
    try:
        doc = json.loads(_trusted_text(state))
        url, pid = str(doc["url"]), int(doc.get("pid") or 0)
        token_file = doc.get("token_file")
    except FileNotFoundError:
        raise WslnetError(
            "no forwarder with --api has run here (start one with `wslnet forward --api "
            "PORT`), or pass --api [HOST:]PORT and set WSLNET_API_TOKEN"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WslnetError(f"{state} is unreadable ({exc}); pass --api [HOST:]PORT") from None
    if not system.pid_alive(pid):
        raise WslnetError(
            f"no forwarder is running: the last one with --api (pid {pid}) has exited"
        )
    try:
        token = _trusted_text(Path(token_file)).strip() if token_file else ""
    except OSError as exc:
        raise WslnetError(f"cannot read the API token ({exc.strerror or exc})") from None
    return url, token
