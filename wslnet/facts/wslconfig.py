"""`.wslconfig` and `/etc/wsl.conf`, judged by the rules of WSL's own parser.

WSL reads both files with its gitconfig-style parser (src/shared/configfile in
microsoft/WSL; see shared wsl-networking.md section 5): a bad line is warned about and
skipped, the rest still applies. This module reports every line WSL would ignore or
misread, and why.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Literal

from wslnet.facts import Problem

FileKind = Literal["wslconfig", "wslconf"]
_SECTION = re.compile(r"^\[([A-Za-z][A-Za-z0-9]*)\]\s*(#.*)?$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*")
_ESCAPES = {"\\": "\\", '"': '"', "b": "\b", "n": "\n", "t": "\t"}

BOOL = "bool"
NETWORKING_MODES = ("nat", "mirrored", "bridged", "virtioproxy", "consomme", "none")

# section.key (case as documented) -> value kind
KNOWN: dict[FileKind, dict[str, str]] = {
    "wslconfig": {
        "wsl2.kernel": "path",
        "wsl2.kernelCommandLine": "text",
        "wsl2.kernelModules": "path",
        "wsl2.memory": "size",
        "wsl2.processors": "int",
        "wsl2.swap": "size",
        "wsl2.swapFile": "path",
        "wsl2.pageReporting": BOOL,
        "wsl2.guiApplications": BOOL,
        "wsl2.debugConsole": BOOL,
        "wsl2.nestedVirtualization": BOOL,
        "wsl2.vmIdleTimeout": "int",
        "wsl2.localhostForwarding": BOOL,
        "wsl2.networkingMode": "mode",
        "wsl2.dnsTunneling": BOOL,
        "wsl2.firewall": BOOL,
        "wsl2.autoProxy": BOOL,
        "wsl2.dnsProxy": BOOL,
        "wsl2.ipv6": BOOL,
        "wsl2.dhcp": BOOL,
        "wsl2.vmSwitch": "text",
        "wsl2.macAddress": "text",
        "wsl2.defaultVhdSize": "size",
        "wsl2.safeMode": BOOL,
        "wsl2.maxCrashDumpCount": "int",
        "experimental.autoMemoryReclaim": "text",
        "experimental.sparseVhd": BOOL,
        "experimental.useWindowsDnsCache": BOOL,
        "experimental.bestEffortDnsParsing": BOOL,
        "experimental.dnsTunnelingIpAddress": "text",
        "experimental.initialAutoProxyTimeout": "int",
        "experimental.ignoredPorts": "text",
        "experimental.hostAddressLoopback": BOOL,
        "experimental.networkingMode": "mode",
        "experimental.dnsTunneling": BOOL,
        "experimental.firewall": BOOL,
        "experimental.autoProxy": BOOL,
    },
    "wslconf": {
        "boot.systemd": BOOL,
        "boot.command": "text",
        "boot.protectBinfmt": BOOL,
        "automount.enabled": BOOL,
        "automount.mountFsTab": BOOL,
        "automount.root": "path",
        "automount.options": "text",
        "automount.ldconfig": BOOL,
        "network.generateHosts": BOOL,
        "network.generateResolvConf": BOOL,
        "network.hostname": "text",
        "interop.enabled": BOOL,
        "interop.appendWindowsPath": BOOL,
        "user.default": "text",
        "gpu.enabled": BOOL,
        "time.useWindowsTimezone": BOOL,
    },
}


@dataclass(frozen=True)
class Entry:
    section: str  # as written; "" above any section header
    key: str  # as written
    value: str
    line: int

    @property
    def name(self) -> str:
        """The canonical `section.key` (documented case), or the lower-case full name."""
        return f"{self.section}.{self.key}".lower() if self.section else self.key.lower()


@dataclass(frozen=True)
class Typo:
    """A value WSL does not know that is close to one it does (`networkingMode=mirored`)."""

    line: int
    key: str  # section.key as documented
    written: str
    meant: str


@dataclass
class WslConfig:
    kind: FileKind
    entries: dict[str, Entry] = field(default_factory=dict)  # by lower-case section.key
    problems: list[Problem] = field(default_factory=list)
    typos: list[Typo] = field(default_factory=list)  # each also among the problems

    def get(self, name: str) -> str | None:
        entry = self.entries.get(name.lower())
        return entry.value if entry else None

    def flag(self, name: str) -> bool | None:
        return parse_bool(self.get(name))


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return {"true": True, "1": True, "false": False, "0": False}.get(value.strip().lower())


def _value(text: str) -> tuple[str, str | None, bool]:
    """Reads a value as WSL does: (value, error or None, continues on the next line)."""
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 == len(text):
                return "".join(out), None, True
            nxt = text[i + 1]
            if nxt not in _ESCAPES:
                return "", f"unknown escape '\\{nxt}' (write '\\\\' for a backslash)", False
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            break
        else:
            out.append(ch)
        i += 1
    return "".join(out).rstrip(), None, False


def parse(text: str, kind: FileKind = "wslconfig") -> WslConfig:
    conf = WslConfig(kind)
    known = {name.lower(): name for name in KNOWN[kind]}
    section = ""
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        raw = lines[number]
        number += 1
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        if raw[0] not in " \t" and not (raw[0].isalpha() or raw[0] in "[#"):
            why = "invalid line: ';' does not start a comment in WSL's files, use '#'"
            if raw[0] != ";":
                why = "invalid line: a line must start with a key, '[' or '#'"
            conf.problems.append(Problem(number, raw, why))
            continue
        if line.startswith("["):
            match = _SECTION.match(line.rstrip())
            if match is None:
                conf.problems.append(
                    Problem(
                        number,
                        raw,
                        "invalid section header: expected [name] with letters "
                        "and digits only; the keys below it are ignored",
                    )
                )
                section = "\0invalid"
            else:
                section = match.group(1)
            continue
        key_match = _KEY.match(line)
        if key_match is None:
            conf.problems.append(Problem(number, raw, "invalid line"))
            continue
        key = key_match.group(0)
        rest = line[len(key) :].lstrip(" \t")
        if not rest.startswith("="):
            conf.problems.append(
                Problem(
                    number,
                    raw,
                    f"expected '=' after {key!r}: keys have only letters "
                    "and digits (no '-' or '_')",
                )
            )
            continue
        value, error, more = _value(rest[1:].strip())
        start = number
        while more and number < len(lines):
            cont, error, more = _value(lines[number].strip())
            value += cont
            number += 1
        if error:
            conf.problems.append(Problem(start, raw, f"line dropped: {error}"))
            continue
        if section == "\0invalid":
            continue
        entry = Entry(section, key, value, start)
        _judge(conf, entry, known, raw)
    return conf


def _judge(conf: WslConfig, entry: Entry, known: dict[str, str], raw: str) -> None:
    name = entry.name
    if name not in known:
        conf.problems.append(Problem(entry.line, raw, _unknown(entry, known, conf.kind)))
        return
    if name in conf.entries:
        first = conf.entries[name].line
        conf.problems.append(Problem(entry.line, raw, f"duplicate key: line {first} wins"))
        return
    canonical = known[name]
    kind = KNOWN[conf.kind][canonical]
    bad = _bad_value(kind, entry.value)
    if bad:
        conf.problems.append(Problem(entry.line, raw, f"{canonical}: {bad}"))
        choices = NETWORKING_MODES if kind == "mode" else ("true", "false") if kind == BOOL else ()
        close = difflib.get_close_matches(entry.value.lower(), choices, n=1, cutoff=0.6)
        if close:
            conf.typos.append(Typo(entry.line, canonical, entry.value, close[0]))
        return  # WSL warns and keeps its default
    conf.entries[name] = entry


def _unknown(entry: Entry, known: dict[str, str], kind: FileKind) -> str:
    if not entry.section:
        sections = [
            n.split(".")[0] for n in known.values() if n.split(".")[1].lower() == entry.key.lower()
        ]
        where = f"[{sections[0]}]" if sections else "a section"
        return (
            f"key {entry.key!r} is above any section header, so WSL ignores it; "
            f"put it under {where}"
        )
    homes = [n for n in known.values() if n.split(".")[1].lower() == entry.key.lower()]
    if homes:
        home = homes[0].split(".")[0]
        return (
            f"{entry.key!r} is not a key of [{entry.section}]; WSL ignores it here: "
            f"move it to [{home}]"
        )
    other: FileKind = "wslconf" if kind == "wslconfig" else "wslconfig"
    elsewhere = [n for n in KNOWN[other] if n.split(".")[1].lower() == entry.key.lower()]
    if elsewhere:
        place = "/etc/wsl.conf" if other == "wslconf" else "%UserProfile%\\.wslconfig"
        home = elsewhere[0].split(".")[0]
        return f"{entry.key!r} is not a key of this file: it belongs in {place} under [{home}]"
    close = difflib.get_close_matches(entry.name, list(known), n=1, cutoff=0.75)
    hint = f"; did you mean {known[close[0]]}?" if close else ""
    return f"unknown key {entry.section}.{entry.key}: WSL ignores it{hint}"


def _bad_value(kind: str, value: str) -> str | None:
    if kind == BOOL and parse_bool(value) is None:
        return f"{value!r} is not a boolean (true, false, 1 or 0)"
    if kind == "mode" and value.lower() not in NETWORKING_MODES:
        return f"{value!r} is not a networking mode ({', '.join(NETWORKING_MODES)})"
    if kind == "int":
        try:
            int(value, 0) if not re.fullmatch(r"0[0-7]+", value) else int(value, 8)
        except ValueError:
            return f"{value!r} is not a whole number"
    if kind == "size" and not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]B?)?", value, re.IGNORECASE):
        return f"{value!r} is not a size such as 4GB or 512MB"
    return None
