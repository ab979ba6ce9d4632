"""Where a configured wslnet forwarder on Windows will listen, as the doctor needs it:
read from the forwarder's TOML file (paths.forward_config) without loading the
forwarder's control plane. A file the forwarder would refuse gives nothing here: the
forwarder itself says what is wrong with it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from wslnet import system
from wslnet.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_SIZE = 1 << 20  # as the forwarder's own limit: a config file is a few lines


@dataclass(frozen=True)
class ForwardListen:
    proto: str  # "tcp" | "udp"
    port: int
    loopback: bool  # listens on loopback only (the default), not for the LAN


def parse(text: str) -> list[ForwardListen]:
    """The listen side of each [[forward]] table (pure); [] if any cannot be read."""
    from wslnet.forward.core.rules import parse_rule

    try:
        tables = tomllib.loads(text).get("forward", [])
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return []
    if not isinstance(tables, list):
        return []
    found = []
    for table in tables:
        if not isinstance(table, dict) or not isinstance(table.get("listen"), (str, int)):
            return []
        proto = str(table.get("proto", "tcp")).lower()
        try:
            listen = parse_rule(f"{proto}/{table['listen']}").listen
        except UsageError:
            return []
        found.append(ForwardListen(proto, listen.port, listen.loopback))
    return found


def read(path: Path | None) -> str | None:
    """The file's text, or None when there is none (or it is not a regular file)."""
    if path is None or not path.is_file():  # a FIFO in its place must not hang the check
        return None
    return system.read_text(path, MAX_SIZE)


def listens(path: Path | None) -> list[ForwardListen]:
    """What the file at `path` says, or [] when there is none."""
    text = read(path)
    return parse(text) if text is not None else []


def readable(text: str | None) -> bool:
    """No file yet, or TOML: a table can be added to it (a broken file is the user's to
    mend first, as the forwarder itself says)."""
    if text is None:
        return True
    try:
        tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class ForwardFile:
    """The Windows forwarder's config file as the doctor found it, for the fix that adds a
    forward to it."""

    path: str  # as seen here: /mnt/c/... from WSL, %APPDATA%\wslnet\forward.toml natively
    text: str | None  # None: no file yet
    windows: bool  # natively on Windows: PowerShell (as the user) writes it
    configured: frozenset[tuple[str, int]] = frozenset()  # (proto, port) it forwards already


def forward_file(path: Path | None, windows: bool) -> ForwardFile | None:
    """The file at `path` (None: no path to look at, or a file no table can be added to)."""
    if path is None:
        return None
    text = read(path)
    if not readable(text):
        return None
    configured = frozenset((x.proto, x.port) for x in parse(text)) if text else frozenset()
    return ForwardFile(str(path), text, windows, configured)
