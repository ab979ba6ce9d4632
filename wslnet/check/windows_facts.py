"""The Windows side's facts, gathered once per run (natively on Windows, through interop
from WSL): reserved port ranges, portproxy rules, who listens on which port, and one
PowerShell call that tries localhost:PORT from Windows and reads the Hyper-V firewall.
Everything runs at once; PowerShell, the slowest (0.3-1 s to start), is started first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from wslnet import system
from wslnet.facts import Problem, ipaddr, procnet
from wslnet.facts import windows as win
from wslnet.where import MODES

TIMEOUT = 1.6  # seconds any one Windows tool gets: the run stays under 2 s


@dataclass(frozen=True)
class ToolOutput:
    """What one Windows command said, kept for the evidence of an unreadable answer."""

    argv: tuple[str, ...]
    code: int
    text: str
    problems: tuple[Problem, ...] = ()

    @property
    def failed(self) -> str | None:
        if self.code == 0:
            return None
        why = {127: "not found", 124: "no answer in time", 126: "could not be started"}
        return f"{' '.join(self.argv)}: {why.get(self.code, f'exit code {self.code}')}"


@dataclass
class WindowsFacts:
    excluded: list[win.Excluded] = field(default_factory=list)
    portproxy: list[win.PortProxy] = field(default_factory=list)
    sockets: list[win.WinSocket] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    reach: dict[int, tuple[bool, str]] = field(default_factory=dict)  # port: (reached, why)
    hyperv: dict[str, object] | None = None
    wsl_profile: str | None = None  # the firewall profile of vEthernet (WSL): Public...
    profiles: dict[str, tuple[bool, str | None]] = field(default_factory=dict)
    wsl_rules: int | None = None  # enabled inbound Allow rules that name vEthernet (WSL)
    lan_rules: dict[tuple[str, int], int] = field(default_factory=dict)  # LAN port: rules
    outputs: dict[str, ToolOutput] = field(default_factory=dict)  # by tool: netsh, netstat...

    def owner(self, port: int) -> tuple[int, str] | None:
        """(pid, program) listening on TCP `port` on Windows, if any."""
        for s in self.sockets:
            if s.proto == "tcp" and s.port == port:
                return s.pid, self.names.get(s.pid, "?")
        return None


def powershell_script(ports: list[int], lan: Sequence[tuple[str, int]] = ()) -> str:
    """Tries every port at once with a short timeout, reads both firewalls and counts the
    rules that admit each LAN port; prints one JSON object (UTF-8 first: the console's
    code page would mangle it)."""
    plist = ",".join(str(p) for p in ports)
    lan_list = ",".join(f"@('{proto.upper()}',{port})" for proto, port in lan)
    return (
        "[Console]::OutputEncoding=[Text.Encoding]::UTF8;$ErrorActionPreference='SilentlyContinue';"
        f"$ports=@({plist});$tasks=@{{}};"
        "foreach($p in $ports){$c=New-Object Net.Sockets.TcpClient;"
        "$tasks[$p]=@($c,$c.ConnectAsync('127.0.0.1',$p))};"
        "Start-Sleep -Milliseconds 300;"  # loopback connects or is refused at once
        "$reach=foreach($p in $ports){$c,$t=$tasks[$p];"
        "$e=if($t.Exception){$t.Exception.InnerException.Message}else{''};"
        "[pscustomobject]@{Port=$p;Reached=($t.IsCompleted -and $c.Connected);Error=$e};"
        "$c.Close()};"
        f"$hv=Get-NetFirewallHyperVVMSetting -PolicyStore ActiveStore -Name '{win.HYPERV_VM}' |"
        " Select-Object Enabled,DefaultInboundAction,DefaultOutboundAction;"
        # The profile of WSL's adapter, and the inbound rules that name it.
        "$ad=Get-NetAdapter -IncludeHidden|?{$_.Name -like 'vEthernet (WSL*'}|Select -First 1;"
        "$prof=if($ad){(Get-NetConnectionProfile -InterfaceIndex $ad.ifIndex).NetworkCategory};"
        "$fw=Get-NetFirewallProfile -PolicyStore ActiveStore|"
        "Select Name,Enabled,DefaultInboundAction;"
        "$rules=@(Get-NetFirewallInterfaceFilter|?{$_.InterfaceAlias -like 'vEthernet (WSL*'}|"
        "Get-NetFirewallRule|?{$_.Enabled -eq 'True' -and $_.Direction -eq 'Inbound' -and "
        "$_.Action -eq 'Allow'}).Count;"
        f"$lan=foreach($l in @({lan_list})){{$n=@(Get-NetFirewallPortFilter -Protocol $l[0]|"
        "?{$_.LocalPort -eq [string]$l[1]}|Get-NetFirewallRule|?{$_.Enabled -eq 'True' -and "
        "$_.Direction -eq 'Inbound' -and $_.Action -eq 'Allow'}).Count;"
        "[pscustomobject]@{Proto=$l[0];Port=$l[1];Rules=$n}};"
        '[pscustomobject]@{Reach=@($reach);HyperV=$hv;WslProfile="$prof";Profiles=@($fw);'
        "WslRules=$rules;Lan=@($lan)}|ConvertTo-Json -Compress -Depth 4"
    )


def _run(name: str, args: list[str], timeout: float = TIMEOUT) -> ToolOutput:
    code, out, _ = system.windows_exe(name, args, timeout)
    return ToolOutput((name, *args), code, out)


async def gather(ports: list[int], lan: Sequence[tuple[str, int]] = ()) -> WindowsFacts:
    script = powershell_script(ports, lan)
    ps_args = ["-NoProfile", "-NonInteractive", "-Command", script]
    excluded = ["interface", "ipv4", "show", "excludedportrange"]
    calls = {
        "powershell": ("powershell.exe", ps_args),
        "excluded-tcp": ("netsh.exe", [*excluded, "protocol=tcp"]),
        "excluded-udp": ("netsh.exe", [*excluded, "protocol=udp"]),
        "portproxy": ("netsh.exe", ["interface", "portproxy", "show", "all"]),
        "netstat": ("netstat.exe", ["-ano"]),
        "tasklist": ("tasklist.exe", ["/fo", "csv", "/nh"]),
    }  # fmt: skip
    outputs = await asyncio.gather(*(asyncio.to_thread(_run, n, a) for n, a in calls.values()))
    facts = WindowsFacts()
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
    objects, probs = win.parse_ps_json(facts.outputs["powershell"].text)
    facts.outputs["powershell"] = _with(facts.outputs["powershell"], probs)
    if objects:
        doc = objects[0]
        reach = doc.get("Reach") or []
        for item in reach if isinstance(reach, list) else [reach]:
            if isinstance(item, dict) and isinstance(item.get("Port"), int):
                facts.reach[int(item["Port"])] = (
                    item.get("Reached") is True,
                    str(item.get("Error") or ""),
                )
        hyperv = doc.get("HyperV")
        facts.hyperv = hyperv if isinstance(hyperv, dict) else None
        category = doc.get("WslProfile")
        facts.wsl_profile = win.network_category(category)
        profiles = doc.get("Profiles") or []
        for p in profiles if isinstance(profiles, list) else [profiles]:
            if isinstance(p, dict) and isinstance(p.get("Name"), str):
                enabled = p.get("Enabled") in (True, 1, "True")
                action = win.firewall_action(p.get("DefaultInboundAction"))
                facts.profiles[str(p["Name"])] = (enabled, action)
        lan_items = doc.get("Lan") or []
        for item in lan_items if isinstance(lan_items, list) else [lan_items]:
            if isinstance(item, dict) and isinstance(item.get("Rules"), int):
                lan_key = (str(item.get("Proto", "")).lower(), int(item.get("Port") or 0))
                facts.lan_rules[lan_key] = int(item["Rules"])
        rules = doc.get("WslRules")
        facts.wsl_rules = rules if isinstance(rules, int) and not isinstance(rules, bool) else None
    return facts


def _with(out: ToolOutput, problems: list[Problem]) -> ToolOutput:
    return ToolOutput(out.argv, out.code, out.text, tuple(problems))


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
