"""The forwarder's TOML file: global settings and [[forward]] tables like the rule grammar.

    connect_timeout = 5          # and idle_timeout, max_conns, drain, udp_timeout,
    allow_any = false            # udp_max_sessions, resolve_interval
    api = "7070"                 # [HOST:]PORT of the control API, as --api; false: none
    [[forward]]
    listen = "8080"              # [HOST:]PORT, as on the command line
    target = "wsl:8080"          # [HOST:]PORT; no HOST means wsl
    proto = "tcp"                # or "udp"
    allow = ["198.19.0.0/24"]    # who may connect, for listen hosts beyond loopback

Errors name the file, the table and the field. At start the settings become the CLI's
defaults (flags win); on reload only the rules change.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wslnet.errors import UsageError
from wslnet.forward.core.rules import Rule, RuleError, parse_networks, parse_rule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SETTINGS: dict[str, type | tuple[type, ...]] = {
    "connect_timeout": (int, float),
    "idle_timeout": (int, float),
    "max_conns": int,
    "drain": (int, float),
    "udp_timeout": (int, float),
    "udp_max_sessions": int,
    "resolve_interval": (int, float),
    "allow_any": bool,
}
RULE_FIELDS = {"listen", "target", "proto", "allow"}


@dataclass
class FileConfig:
    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    api_off: bool = False  # `api = false`: no API (what `wslnet service` honours)


def default_path(windows: bool | None = None) -> Path:
    """%APPDATA%\\wslnet\\forward.toml on Windows, else the XDG config folder."""
    from wslnet import paths

    return paths.forward_config(windows)


MAX_SIZE = 1 << 20  # a config file is a few lines; more is a mistake or an attack


def read_regular_file(path: Path, limit: int = MAX_SIZE) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or UsageError. Opened
    without blocking, so a FIFO or a device in its place cannot hang the caller."""
    name = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UsageError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{name}: not a regular file")
        if st.st_size > limit:
            raise UsageError(f"{name}: larger than {limit // 1024} KiB; not a config file?")
        data = os.read(fd, limit + 1)  # a regular file does not block
    except OSError as exc:
        raise UsageError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UsageError(f"{name}: larger than {limit // 1024} KiB; not a config file?")
    return data


def load(path: Path) -> FileConfig:
    """Reads and checks the file; every way it can be wrong is one UsageError."""
    name = str(path)
    data = read_regular_file(path)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{name}: not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{name}: not valid TOML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer past Python's 4,300-digit limit
        raise UsageError(f"{name}: not valid TOML: {exc}") from None
    try:
        return parse(doc, path)
    except RecursionError:
        raise UsageError(f"{name}: nested too deeply") from None


def parse(data: dict[str, Any], path: Path) -> FileConfig:
    name = str(path)
    conf = FileConfig(path)
    for key, value in data.items():
        if key == "forward":
            continue
        if key == "api":
            _api_setting(conf, value, name)
            continue
        if key not in SETTINGS:
            known = ", ".join(sorted([*SETTINGS, "api"]))
            raise UsageError(f"{name}: unknown setting {key!r} (known: {known}, [[forward]])")
        want = SETTINGS[key]
        if not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
            raise UsageError(f"{name}: setting {key!r} has the wrong type ({_show(value)})")
        conf.settings[key] = value
    tables = data.get("forward", [])
    if not isinstance(tables, list):
        raise UsageError(f"{name}: 'forward' must be tables: write [[forward]], not [forward]")
    for number, table in enumerate(tables, 1):
        where = f"{name}: [[forward]] #{number}"
        if not isinstance(table, dict):
            raise UsageError(f"{where}: not a table")
        conf.rules.append(_rule(table, where))
    return conf


def _api_setting(conf: FileConfig, value: object, name: str) -> None:
    """`api = "7070"` (or 7070, or "127.0.0.1:7070") is --api's default; `api = false`
    says there is to be none, which `wslnet service` honours (it gives one otherwise)."""
    if value is False:
        conf.api_off = True
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        conf.settings["api"] = str(value)
    else:
        raise UsageError(f"{name}: setting 'api' must be \"[HOST:]PORT\" or false ({_show(value)})")


def _rule(table: dict[str, Any], where: str) -> Rule:
    unknown = set(table) - RULE_FIELDS
    if unknown:
        raise UsageError(
            f"{where}: unknown field {sorted(unknown)[0]!r} "
            f"(fields: {', '.join(sorted(RULE_FIELDS))})"
        )
    for key in ("listen", "target", "proto"):
        if key in table and not isinstance(table[key], (str, int)):
            raise UsageError(f"{where}: field {key!r} must be a string")
    if "listen" not in table:
        raise UsageError(f"{where}: field 'listen' is missing ([HOST:]PORT)")
    proto = _show(table.get("proto", "tcp")).lower()
    if proto not in ("tcp", "udp"):
        raise UsageError(f"{where}: field 'proto': {proto!r} is neither tcp nor udp")
    allow = table.get("allow")
    if allow is not None and not isinstance(allow, list):
        raise UsageError(f"{where}: field 'allow' must be a list of networks")
    nets = parse_networks(allow, f"{where}: field 'allow'") if allow is not None else None
    text = f"{proto}/{_show(table['listen'])}"
    if "target" in table:
        text += f"={_show(table['target'])}"
    try:
        return parse_rule(text, nets)
    except RuleError as exc:
        raise UsageError(f"{where}: field {exc.part!r}: {exc.why}") from None


def _show(value: object, limit: int = 60) -> str:
    """A value as rule text or for a message: strings as they are; anything else
    shortened, and never a 5,000-digit number in full (Python refuses to print one)."""
    if isinstance(value, str):
        return value
    try:
        text = repr(value)
    except ValueError:
        return "(a number too long to print)"
    return text if len(text) <= limit else text[:limit] + "..."
