"""The Windows side's facts, gathered once per run (natively on Windows, through interop
from WSL): reserved port ranges, portproxy rules, who listens on which port, and one
PowerShell call that tries localhost:PORT from Windows and reads the firewalls, the IP
Helper service and the adapters. Everything runs at once; PowerShell, the slowest (a
cold one takes 2-4 s), is started first and has a budget of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from wslnet import system
from wslnet.facts import Problem, ipaddr, procnet
from wslnet.facts import windows as win
from wslnet.where import MODES

TIMEOUT = 1.6  # seconds any one Windows tool gets: the run stays under 2 s
# A cold powershell.exe auto-loading NetSecurity and NetAdapter takes 2-4 s: it gets a
# budget of its own, and the checks that need it wait up to WINDOWS_BUDGET.
POWERSHELL_TIMEOUT = 3.5
WINDOWS_BUDGET = 4.0
CONNECT_WAIT_MS = 300  # how long the connection test waits before it reads the results

ReachState = Literal["reached", "refused", "pending"]


@dataclass(frozen=True)
class ToolOutput:
    """What one Windows command said, kept for the evidence of an unreadable answer."""

    argv: tuple[str, ...]
    code: int
    text: str
    problems: tuple[Problem, ...] = ()
    timeout: float = TIMEOUT

    @property
    def failed(self) -> str | None:
        if self.code == 0:
            return None
        why = {127: "not found", 124: "no answer in time", 126: "could not be started"}
        return f"{self.argv[0]}: {why.get(self.code, f'exit code {self.code}')}"


@dataclass(frozen=True)
class Reach:
    """Windows' connect to localhost:PORT. On Windows a refused loopback connect is
    retried for about 2 s (section 9), so one not finished is "pending": not proved,
    never "not reached"."""

    state: ReachState
    error: str = ""


@dataclass(frozen=True)
class HyperV:
    """Get-NetFirewallHyperVVMSetting for WSL's VM: Enabled is three-state (None:
    NotConfigured, the default applies); the action as Block, Allow or NotConfigured."""

    enabled: bool | None
    inbound: str | None
    raw: dict[str, object]


@dataclass
class PowerShellFacts:
    """What the one PowerShell call told: the connection test, the firewalls, the IP
    Helper service and the adapters that are up."""

    output: ToolOutput
    reach: dict[int, Reach] = field(default_factory=dict)
    hyperv: HyperV | None = None
    wsl_profile: str | None = None  # the firewall profile of vEthernet (WSL): Domain...
    profiles: dict[str, tuple[bool | None, str | None]] = field(default_factory=dict)
    wsl_rules: int | None = None  # enabled inbound Allow rules that name vEthernet (WSL)
    inbound: list[win.PortFilter] | None = None  # enabled inbound Allow rules' ports
    iphlpsvc: win.Service | None = None
    adapters: list[win.Adapter] = field(default_factory=list)

    def admitting(self, proto: str, port: int) -> int:
        return sum(f.admits(proto, port) for f in self.inbound or [])


@dataclass
class WindowsFacts:
    excluded: list[win.Excluded] = field(default_factory=list)
    portproxy: list[win.PortProxy] = field(default_factory=list)
    sockets: list[win.WinSocket] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    outputs: dict[str, ToolOutput] = field(default_factory=dict)  # by tool: netsh, netstat...
    _powershell: asyncio.Task[PowerShellFacts] | None = None

    async def powershell(self) -> PowerShellFacts:
        """The PowerShell facts: started before the other tools, awaited by the checks
        that need them (so the others do not wait for a slow PowerShell)."""
        assert self._powershell is not None, "gather() starts PowerShell"
        return await asyncio.shield(self._powershell)

    def owners(self, port: int) -> list[tuple[int, str, str]]:
        """(pid, program, address) of each TCP listener on `port` on Windows."""
        return [
            (s.pid, self.names.get(s.pid, "?"), s.address)
            for s in self.sockets
            if s.proto == "tcp" and s.port == port
        ]

    def owner(self, port: int) -> tuple[int, str] | None:
        """(pid, program) listening on TCP `port` on Windows, if any."""
        found = self.owners(port)
        return (found[0][0], found[0][1]) if found else None


def powershell_script(ports: list[int], lan: Sequence[tuple[str, int]] = ()) -> str:
    """Tries every port at once, reads both firewalls (rules from group policy too:
    -PolicyStore ActiveStore), the IP Helper service and the adapters that are up;
    prints one JSON object (UTF-8 first: the console's code page would mangle it)."""
    plist = ",".join(str(p) for p in ports)
    ruleset = (
        # Port filters of enabled inbound Allow rules, matched in Python (ranges, lists,
        # Any); a rule's Name is its filter's InstanceID.
        "$ids=@{};Get-NetFirewallRule -PolicyStore ActiveStore -Direction Inbound -Action "
        "Allow -Enabled True|%{$ids[$_.Name]=1};$pf=@(Get-NetFirewallPortFilter -PolicyStore "
        "ActiveStore|?{$ids[$_.InstanceID]}|Select Protocol,LocalPort);"
        if lan
        else "$pf=$null;"
    )
    return (
        "[Console]::OutputEncoding=[Text.Encoding]::UTF8;$ErrorActionPreference='SilentlyContinue';"
        f"$ports=@({plist});$tasks=@{{}};"
        "foreach($p in $ports){$c=New-Object Net.Sockets.TcpClient;"
        "$tasks[$p]=@($c,$c.ConnectAsync('127.0.0.1',$p))};"
        f"Start-Sleep -Milliseconds {CONNECT_WAIT_MS};"
        "$reach=foreach($p in $ports){$c,$t=$tasks[$p];"
        "$e=if($t.Exception){$t.Exception.InnerException.Message}else{''};"
        "[pscustomobject]@{Port=$p;Done=$t.IsCompleted;Reached=($t.IsCompleted -and "
        "$c.Connected);Error=$e};$c.Close()};"
        f"$hv=Get-NetFirewallHyperVVMSetting -PolicyStore ActiveStore -Name '{win.HYPERV_VM}' |"
        " Select-Object Enabled,DefaultInboundAction,DefaultOutboundAction;"
        # The profile of WSL's adapter, and the inbound rules that name it.
        "$ad=Get-NetAdapter -IncludeHidden|?{$_.Name -like 'vEthernet (WSL*'}|Select -First 1;"
        "$prof=if($ad){(Get-NetConnectionProfile -InterfaceIndex $ad.ifIndex).NetworkCategory};"
        "$fw=Get-NetFirewallProfile -PolicyStore ActiveStore|"
        "Select Name,Enabled,DefaultInboundAction;"
        "$rules=@(Get-NetFirewallInterfaceFilter -PolicyStore ActiveStore|"
        "?{$_.InterfaceAlias -like 'vEthernet (WSL*'}|"
        "Get-NetFirewallRule|?{$_.Enabled -eq 'True' -and $_.Direction -eq 'Inbound' -and "
        "$_.Action -eq 'Allow'}).Count;"
        f"{ruleset}"
        "$svc=Get-Service iphlpsvc|Select Status,StartType;"
        "$up=@(Get-NetAdapter|?{$_.Status -eq 'Up'}|%{[pscustomobject]@{Name=$_.Name;"
        "InterfaceDescription=$_.InterfaceDescription;Metric=(Get-NetIPInterface "
        "-InterfaceIndex $_.ifIndex -AddressFamily IPv4).InterfaceMetric}});"
        '[pscustomobject]@{Reach=@($reach);HyperV=$hv;WslProfile="$prof";Profiles=@($fw);'
        "WslRules=$rules;Inbound=$pf;IpHelper=$svc;Adapters=$up}|ConvertTo-Json -Compress -Depth 4"
    )


def _run(name: str, args: list[str], timeout: float = TIMEOUT) -> ToolOutput:
    code, out, _ = system.windows_exe(name, args, timeout)
    return ToolOutput((name, *args), code, out, (), timeout)


async def gather(ports: list[int], lan: Sequence[tuple[str, int]] = ()) -> WindowsFacts:
    """Starts PowerShell first (the slowest), then the other tools at once."""
    ps_args = ["-NoProfile", "-NonInteractive", "-Command", powershell_script(ports, lan)]
    ps = asyncio.create_task(asyncio.to_thread(_run, "powershell.exe", ps_args, POWERSHELL_TIMEOUT))
    excluded = ["interface", "ipv4", "show", "excludedportrange"]
    calls = {
        "excluded-tcp": ("netsh.exe", [*excluded, "protocol=tcp"]),
        "excluded-udp": ("netsh.exe", [*excluded, "protocol=udp"]),
        "portproxy": ("netsh.exe", ["interface", "portproxy", "show", "all"]),
        "netstat": ("netstat.exe", ["-ano"]),
        "tasklist": ("tasklist.exe", ["/fo", "csv", "/nh"]),
    }  # fmt: skip
    outputs = await asyncio.gather(*(asyncio.to_thread(_run, n, a) for n, a in calls.values()))
    facts = WindowsFacts(_powershell=asyncio.create_task(_read_powershell(ps, lan)))
    for key, out in zip(calls, outputs, strict=True):
        facts.outputs[key] = out
    for key in ("excluded-tcp", "excluded-udp"):
        found, probs = win.parse_excluded(facts.outputs[key].text, "udp" if "udp" in key else "tcp")
        facts.excluded += found
        facts.outputs[key] = _with(facts.outputs[key], probs)
    facts.portproxy, probs = win.parse_portproxy(facts.outputs["portproxy"].text)
    facts.outputs["portproxy"] = _with(facts.outputs["portproxy"], probs)
    facts.sockets, probs = win.parse_netstat(facts.outputs["netstat"].text)
    facts.outputs["netstat"] = _with(facts.outputs["netstat"], probs)
    facts.names, probs = win.parse_tasklist_csv(facts.outputs["tasklist"].text)
    facts.outputs["tasklist"] = _with(facts.outputs["tasklist"], probs)
    return facts


async def _read_powershell(
    started: asyncio.Task[ToolOutput], lan: Sequence[tuple[str, int]]
) -> PowerShellFacts:
    out = await started
    objects, probs = win.parse_ps_json(out.text)
    facts = PowerShellFacts(_with(out, probs))
    if objects:
        read_powershell(facts, objects[0], bool(lan))
    return facts


def _items(value: object) -> list[dict[str, object]]:
    """A JSON list of objects, or the one object Windows PowerShell 5.1 unwrapped."""
    items = value if isinstance(value, list) else [value]
    return [i for i in items if isinstance(i, dict)]


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_powershell(facts: PowerShellFacts, doc: dict[str, object], lan: bool) -> None:
    """Fills `facts` from the script's JSON, in the shape Windows PowerShell 5.1 prints."""
    for item in _items(doc.get("Reach")):
        port = _count(item.get("Port"))
        if port is None:
            continue
        if item.get("Reached") is True:
            facts.reach[port] = Reach("reached")
        elif item.get("Done") is False:
            facts.reach[port] = Reach("pending")
        else:
            facts.reach[port] = Reach("refused", str(item.get("Error") or ""))
    hyperv = doc.get("HyperV")
    if isinstance(hyperv, dict):
        enabled = win.gpo_boolean(hyperv.get("Enabled"))
        inbound = win.firewall_action(hyperv.get("DefaultInboundAction"))
        facts.hyperv = HyperV(enabled, inbound, dict(hyperv))
    facts.wsl_profile = win.firewall_profile(win.network_category(doc.get("WslProfile")))
    for p in _items(doc.get("Profiles")):
        if isinstance(p.get("Name"), str):
            action = win.firewall_action(p.get("DefaultInboundAction"))
            facts.profiles[str(p["Name"])] = (win.gpo_boolean(p.get("Enabled")), action)
    facts.wsl_rules = _count(doc.get("WslRules"))
    facts.inbound = win.port_filters(doc.get("Inbound")) if lan else None
    facts.iphlpsvc = win.service("iphlpsvc", doc.get("IpHelper"))
    facts.adapters = win.adapters(doc.get("Adapters"))


def _with(out: ToolOutput, problems: list[Problem]) -> ToolOutput:
    return ToolOutput(out.argv, out.code, out.text, tuple(problems), out.timeout)


@dataclass
class WslFacts:
    """WSL as Windows sees it: versions, distributions, and (only when the default
    distribution already runs, or with --boot) its networking mode and listeners."""

    version: win.WslVersion
    distros: list[win.Distro]
    outputs: dict[str, ToolOutput]
    default: win.Distro | None = None
    mode: str | None = None  # from wslinfo inside the distribution
    vm_addresses: list[str] = field(default_factory=list)
    entries: list[procnet.SocketEntry] = field(default_factory=list)
    read_inside: bool = False  # the distribution was asked (it ran, or --boot started it)


def inside_script() -> str:
    """One command through wsl.exe: the mode, eth0's address, the /proc/net files."""
    return (
        "wslinfo --networking-mode 2>/dev/null || echo unknown; echo '@@ eth0'; "
        f"ip -4 -o addr show dev eth0 2>/dev/null; {procnet.SNAPSHOT_SCRIPT}"
    )


async def gather_wsl(boot: bool) -> WslFacts:
    version, listing = await asyncio.gather(
        asyncio.to_thread(_run, "wsl.exe", ["--version"]),
        asyncio.to_thread(_run, "wsl.exe", ["-l", "-v"]),  # answers without booting
    )
    distros, probs = win.parse_wsl_list(listing.text)
    facts = WslFacts(
        win.parse_wsl_version(version.text),
        distros,
        {"version": version, "list": _with(listing, probs)},
        next((d for d in distros if d.default), None),
    )
    d = facts.default
    if d is None or d.version != 2 or not (d.running or boot):
        return facts
    inside = await asyncio.to_thread(
        _run, "wsl.exe", ["-d", d.name, "-e", "sh", "-c", inside_script()], 6.0 if boot else TIMEOUT
    )
    facts.outputs["inside"] = inside
    if inside.code != 0:
        return facts
    first, _, rest = inside.text.partition("\n")
    facts.mode = first.strip() if first.strip() in MODES else None
    sections = procnet.split_sections(rest)
    addrs, _ = ipaddr.parse_oneline("\n".join(sections.get("eth0", [])))
    facts.vm_addresses = [a.address for a in addrs if a.family == "inet"]
    facts.entries = procnet.parse_snapshot(sections)
    facts.read_inside = True
    return facts
