"""Windows tools' output, parsed without I/O: netsh (excluded port ranges, portproxy),
netstat -ano, tasklist /fo csv, wsl.exe -l -v and --version, PowerShell's ConvertTo-Json.

This output is hostile input (shared wsl-networking.md section 9): translated headings,
the console's code page, CRLF, column widths that change, prompts and blank lines
pasted around it. So the parsers key on what does not change (numbers, addresses, the
position of columns) and never on words; a line they cannot read is a Problem.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Literal

from wslnet.facts import Problem

Proto = Literal["tcp", "udp"]
# The creator id WSL's VM has in the Hyper-V firewall (shared wsl-networking.md section 9).
HYPERV_VM = "{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}"

_RANGE = re.compile(r"^\s*(\d{1,5})\s+(\d{1,5})\s*(\*)?\s*$")
_PROTO = re.compile(r"\b(tcp|udp)\b", re.I)


@dataclass(frozen=True)
class Excluded:
    """A port range Windows reserves (Hyper-V, WinNAT, Docker; `*`: an administrator)."""

    proto: Proto
    start: int
    end: int
    administered: bool

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end


def parse_excluded(text: str, proto: Proto = "tcp") -> tuple[list[Excluded], list[Problem]]:
    """`netsh interface ipv4 show excludedportrange protocol=tcp` (any language: a
    "Protocol udp ..." heading switches the protocol; rows are two numbers and a `*`)."""
    found: list[Excluded] = []
    problems: list[Problem] = []
    current = proto
    headings = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = _RANGE.match(line)
        if m:
            start, end = int(m[1]), int(m[2])
            if not 0 < start <= end <= 65535:
                problems.append(Problem(number, raw, "not a port range"))
                continue
            found.append(Excluded(current, start, end, bool(m[3])))
            continue
        heading = _PROTO.search(line)
        if heading and not any(ch.isdigit() for ch in line):
            current = "udp" if heading[1].lower() == "udp" else "tcp"
            headings += 1
        elif any(ch.isdigit() for ch in line):
            problems.append(Problem(number, raw, "not a port range (cut off?)"))
    if not headings and not found:
        # netsh always prints its "Protocol tcp ..." heading: without it this is not
        # the table, and "no ranges" would be a false all-clear.
        problems.append(Problem(0, text[:200], "no excluded port range table"))
    return found, problems


@dataclass(frozen=True)
class PortProxy:
    """A `netsh interface portproxy` rule: served by the IP Helper service, kept in the
    registry across reboots (so it outlives the WSL address it points at)."""

    kind: str  # v4tov4, v4tov6, v6tov4, v6tov6
    listen_address: str
    listen_low: int
    listen_high: int
    connect_address: str
    connect_low: int
    connect_high: int

    @property
    def listen_port(self) -> str:
        low, high = self.listen_low, self.listen_high
        return str(low) if low == high else f"{low}-{high}"

    def covers(self, port: int) -> bool:
        return self.listen_low <= port <= self.listen_high


_PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
_KIND = re.compile(r"ipv([46]).*ipv([46])", re.I)


def _ports(text: str) -> tuple[int, int] | None:
    m = _PORTS.match(text)
    if not m:
        return None
    low, high = int(m[1]), int(m[2] or m[1])
    return (low, high) if 0 < low <= high <= 65535 else None


def _address(text: str) -> bool:
    if text == "*" or re.match(r"^[A-Za-z0-9.-]+$", text):
        return True  # portproxy takes host names too
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_portproxy(text: str) -> tuple[list[PortProxy], list[Problem]]:
    """`netsh interface portproxy show all` (or `show v4tov4`): a "Listen on ipv4: /
    Connect to ipv6:" heading sets the kind; each rule is four columns."""
    found: list[PortProxy] = []
    problems: list[Problem] = []
    kind = "v4tov4"
    headings = 0
    lines = 0
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        lines += bool(words)
        if len(words) == 4:
            listen, connect = _ports(words[1]), _ports(words[3])
            if listen and connect and _address(words[0]) and _address(words[2]):
                found.append(PortProxy(kind, words[0], *listen, words[2], *connect))
                continue
        m = _KIND.search(raw)
        if m and ":" in raw:
            kind = f"v{m[1]}tov{m[2]}"
            headings += 1
        elif any(_ports(w) for w in words):  # a row's port number, but not a whole row
            problems.append(Problem(number, raw, "not a portproxy rule (cut off?)"))
    if lines and not headings and not found:
        # No rules prints nothing; text without the "Listen on ipv4:" heading is not the
        # table, and "no rules" would be a false all-clear.
        problems.append(Problem(0, text[:200], "no portproxy table"))
    return found, problems


@dataclass(frozen=True)
class WinSocket:
    """A listening socket in `netstat -ano` (TCP listening, or a bound UDP socket)."""

    proto: Proto
    address: str
    port: int
    pid: int


def _split_addr(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]").split("%")[0], int(port)


def parse_netstat(text: str) -> tuple[list[WinSocket], list[Problem]]:
    """`netstat -ano`: the state word is translated ("LISTENING", "ABHÖREN"), so a TCP
    socket listens when its foreign address is the unspecified one (0.0.0.0:0, [::]:0)."""
    found: list[WinSocket] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words or words[0].upper() not in ("TCP", "UDP"):
            continue
        proto: Proto = "tcp" if words[0].upper() == "TCP" else "udp"
        try:
            local = _split_addr(words[1])
            pid = int(words[-1])
        except (IndexError, ValueError):
            problems.append(Problem(number, raw, "not a netstat line"))
            continue
        if local is None:
            problems.append(Problem(number, raw, "not a netstat line"))
            continue
        listening = len(words) == 5 and words[2] in ("0.0.0.0:0", "[::]:0")
        if proto == "tcp" and not listening:
            continue  # an established connection, not a listener
        found.append(WinSocket(proto, local[0], local[1], pid))
    return found, problems


def parse_tasklist_csv(text: str) -> tuple[dict[int, str], list[Problem]]:
    """`tasklist /fo csv /nh`: "name","pid","session","#","memory" per line."""
    names: dict[int, str] = {}
    problems: list[Problem] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row:
            continue
        try:
            names[int(row[1])] = row[0]
        except (IndexError, ValueError):
            problems.append(Problem(number, ",".join(row), "not a tasklist row"))
    return names, problems


@dataclass(frozen=True)
class Distro:
    name: str
    state: str  # Running, Stopped, Installing... (translated on other systems)
    version: int  # 1 or 2
    default: bool

    @property
    def running(self) -> bool:
        return self.state.lower() in ("running", "en cours d'exécution", "wird ausgeführt")


def parse_wsl_list(text: str) -> tuple[list[Distro], list[Problem]]:
    """`wsl.exe -l -v`: NAME STATE VERSION, the default marked `*`; the heading is
    translated, so a row is whatever ends in the version number 1 or 2."""
    found: list[Distro] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.replace("\x00", "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("PS ", ">")):
            continue
        default = line.startswith("*")
        words = line.lstrip("*").split()
        if len(words) >= 3 and words[-1] in ("1", "2"):
            found.append(Distro(" ".join(words[:-2]), words[-2], int(words[-1]), default))
        elif words and words[-1] not in ("VERSION",) and any(ch.isdigit() for ch in line):
            problems.append(Problem(number, raw, "not a distribution row"))
    return found, problems


@dataclass(frozen=True)
class WslVersion:
    wsl: str | None
    kernel: str | None
    windows: str | None
    lines: tuple[str, ...]  # every "name: value" line, as printed


_VERSION = re.compile(r"^\s*([^:]+):\s*(\d+\.[\w.+-]*)\s*$")  # x.y: not "Default Version: 2"


def parse_wsl_version(text: str) -> WslVersion:
    """`wsl.exe --version`: the labels are translated, so by position: the first line is
    WSL's version, the second the kernel's, the last Windows'."""
    pairs = [m for ln in text.replace("\x00", "").splitlines() if (m := _VERSION.match(ln))]
    if not pairs:
        return WslVersion(None, None, None, ())
    lines = tuple(f"{m[1].strip()}: {m[2]}" for m in pairs)
    kernel = pairs[1][2] if len(pairs) > 1 else None
    windows = pairs[-1][2] if len(pairs) > 2 else None
    return WslVersion(pairs[0][2], kernel, windows, lines)


def parse_ps_json(text: str) -> tuple[list[dict[str, object]], list[Problem]]:
    """PowerShell's `ConvertTo-Json`: Windows PowerShell 5.1 unwraps a single object and
    prints enums as numbers; both shapes come back as a list of objects."""
    body = text.strip().lstrip("\ufeff")
    if not body:
        return [], []
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return [], [Problem(0, body[:200], f"not JSON: {exc}")]
    items = doc if isinstance(doc, list) else [doc]
    objects = [i for i in items if isinstance(i, dict)]
    problems = [Problem(0, str(i)[:200], "not an object") for i in items if not isinstance(i, dict)]
    return objects, problems


# NET_FW_ACTION as Windows PowerShell 5.1 prints it: numbers instead of names.
FIREWALL_ACTIONS = {0: "NotConfigured", 2: "Allow", 4: "Block"}


def firewall_action(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return FIREWALL_ACTIONS.get(value, f"action {value}")
    return None


# NetConnectionProfile.NetworkCategory: numbers in Windows PowerShell 5.1.
NETWORK_CATEGORIES = {0: "Public", 1: "Private", 2: "DomainAuthenticated"}
# The firewall profile that applies to each category (Get-NetFirewallProfile's Name).
FIREWALL_PROFILES = {"Public": "Public", "Private": "Private", "DomainAuthenticated": "Domain"}


def firewall_profile(category: str | None) -> str | None:
    """The firewall profile (Domain, Private, Public) of a network category."""
    return FIREWALL_PROFILES.get(category or "", category)


# GpoBoolean (Get-NetFirewallHyperVVMSetting's Enabled, Get-NetFirewallProfile's Enabled):
# three states, printed as numbers by Windows PowerShell 5.1's ConvertTo-Json.
GPO_BOOLEAN: dict[object, bool | None] = {
    0: False, 1: True, 2: None, "False": False, "True": True, "NotConfigured": None,
}  # fmt: skip


def gpo_boolean(value: object) -> bool | None:
    """True, False, or None for NotConfigured (the default applies) and the unknown."""
    if isinstance(value, bool):
        return value
    return GPO_BOOLEAN.get(value if isinstance(value, (int, str)) else None)


def network_category(value: object) -> str | None:
    if isinstance(value, str):
        if value.isdigit():
            return NETWORK_CATEGORIES.get(int(value), value)
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return NETWORK_CATEGORIES.get(value, str(value))
    return None


def new_firewall_rule(proto: str, port: int) -> str:
    """The PowerShell command (as Administrator) that admits one port from the LAN."""
    return (
        f'New-NetFirewallRule -DisplayName "wslnet {port}" -Direction Inbound '
        f"-Protocol {proto.upper()} -LocalPort {port} -Action Allow"
    )


@dataclass(frozen=True)
class PortFilter:
    """An enabled inbound Allow rule's protocol and local ports, as Get-NetFirewallPortFilter
    gives them: Protocol "TCP", "UDP", "Any" (or a number); LocalPort "Any", "5000",
    "5000-5010", a keyword such as "RPC", or a list of these (one string when single)."""

    protocol: str
    ports: tuple[str, ...]

    def admits(self, proto: str, port: int) -> bool:
        numbers = {"tcp": "6", "udp": "17"}
        if self.protocol.lower() not in ("any", proto, numbers.get(proto, "")):
            return False
        return any(_port_matches(p, port) for p in self.ports)


def _port_matches(spec: str, port: int) -> bool:
    spec = spec.strip()
    if spec.lower() == "any":
        return True
    low, _, high = spec.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return False  # RPC, IPHTTPS...: not a port number
    return int(low) <= port <= int(high or low)


def port_filters(value: object) -> list[PortFilter]:
    """The port filters in PowerShell's JSON (one object unwrapped by 5.1, or a list)."""
    items = value if isinstance(value, list) else [value] if value is not None else []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        proto, ports = item.get("Protocol"), item.get("LocalPort")
        listed = ports if isinstance(ports, list) else [ports]
        out.append(PortFilter(str(proto or "Any"), tuple(str(p) for p in listed if p is not None)))
    return out


# ServiceControllerStatus and ServiceStartMode, as numbers in Windows PowerShell 5.1.
SERVICE_STATUS = {1: "Stopped", 2: "StartPending", 3: "StopPending", 4: "Running",
                  5: "ContinuePending", 6: "PausePending", 7: "Paused"}  # fmt: skip
START_MODE = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}


@dataclass(frozen=True)
class Service:
    """A Windows service's state (Get-Service): Running, Stopped...; Automatic, Disabled..."""

    name: str
    status: str
    start: str

    @property
    def running(self) -> bool:
        return self.status == "Running"


def service(name: str, value: object) -> Service | None:
    if not isinstance(value, dict):
        return None
    return Service(name, _enum(value.get("Status"), SERVICE_STATUS),
                   _enum(value.get("StartType"), START_MODE))  # fmt: skip


def _enum(value: object, names: dict[int, str]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return names.get(value, str(value))
    return str(value) if value is not None else "?"


@dataclass(frozen=True)
class Adapter:
    """A network adapter that is up on Windows (Get-NetAdapter), with its IPv4 metric."""

    name: str
    description: str
    metric: int | None

    @property
    def vpn(self) -> str | None:
        """The VPN product this adapter belongs to, if it is one (by its driver's name)."""
        text = f"{self.description} {self.name}".lower()
        return next((product for marks, product in VPN_ADAPTERS if any(m in text for m in marks)),
                    None)  # fmt: skip


# Driver descriptions VPN clients give their adapters (shared wsl-networking.md section 9).
VPN_ADAPTERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("anyconnect", "cisco systems vpn"), "Cisco AnyConnect"),
    (("pangp", "globalprotect"), "GlobalProtect"),
    (("zscaler",), "Zscaler"),
    (("fortinet", "forticlient"), "FortiClient"),
    (("juniper", "pulse secure", "ivanti"), "Ivanti/Pulse"),
    (("tap-windows", "tap-win32", "openvpn"), "OpenVPN"),
    (("wireguard",), "WireGuard"),
)


def adapters(value: object) -> list[Adapter]:
    items = value if isinstance(value, list) else [value] if value is not None else []
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            metric = item.get("Metric")
            out.append(Adapter(str(item["Name"]), str(item.get("InterfaceDescription") or ""),
                               metric if isinstance(metric, int) else None))  # fmt: skip
    return out
