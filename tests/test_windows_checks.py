"""The Windows side in process: recorded tool outputs come in through the one seam where
Windows programs run (system.windows_exe), and the verdicts are asserted as a user sees
them. The lab tier runs the same checks end to end with fake *.exe programs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest

from wslnet import system
from wslnet.check import runner, verdicts, windows_facts
from wslnet.check.context import Context, Options
from wslnet.check.windows_facts import WindowsFacts
from wslnet.where import Environment

SAMPLES = Path(__file__).parent / "samples"
NETSTAT = (
    "\r\nActive Connections\r\n\r\n  Proto  Local Address    Foreign Address  State       PID\r\n"
    "  TCP    127.0.0.1:3000   0.0.0.0:0        LISTENING   4120\r\n"
    "  TCP    127.0.0.1:5173   0.0.0.0:0        LISTENING   9876\r\n"
    "  TCP    0.0.0.0:8080     0.0.0.0:0        LISTENING   1044\r\n"
)
TASKLIST = (
    '"node.exe","4120","Console","1","50,000 K"\r\n'
    '"wslrelay.exe","9876","Console","1","8,000 K"\r\n'
    '"svchost.exe","1044","Services","0","12,000 K"\r\n'
)
# The script's answer in the shape Windows PowerShell 5.1's ConvertTo-Json prints: enums
# as numbers (GpoBoolean Enabled 1, NET_FW_ACTION Block 4, ServiceControllerStatus
# Running 4, ServiceStartMode Automatic 2), a one-element pipeline unwrapped (HyperV, IpHelper).
POWERSHELL_DOC: dict[str, object] = {
    "Reach": [{"Port": 5173, "Done": True, "Reached": True, "Error": ""},
              {"Port": 3000, "Done": True, "Reached": False,
               "Error": "No connection could be made because the target machine actively "
                        "refused it 127.0.0.1:3000"}],
    "HyperV": {"Enabled": 1, "DefaultInboundAction": 4, "DefaultOutboundAction": 2},
    "WslProfile": "Public",
    "Profiles": [{"Name": "Domain", "Enabled": 1, "DefaultInboundAction": 0},
                 {"Name": "Private", "Enabled": 1, "DefaultInboundAction": 0},
                 {"Name": "Public", "Enabled": 1, "DefaultInboundAction": 0}],
    "WslRules": 1,
    "Inbound": None,
    "IpHelper": {"Status": 4, "StartType": 2},
    "Adapters": {"Name": "Wi-Fi", "InterfaceDescription": "Intel(R) Wi-Fi 6 AX201 160MHz",
                 "Metric": 35},
}  # fmt: skip
POWERSHELL = json.dumps(POWERSHELL_DOC)


def body(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8").split("\n", 1)[1]


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, str]]:
    """What each Windows program answers; tests change entries before gathering."""
    answers = {
        "powershell.exe": (0, POWERSHELL),
        "netsh.exe excludedportrange protocol=tcp": (0, body("win-excludedportrange-1.txt")),
        "netsh.exe excludedportrange protocol=udp": (0, "\r\nProtocol udp Port Exclusion Ranges\r\n"),
        "netsh.exe portproxy": (0, body("win-netsh-portproxy-1.txt")),
        "netstat.exe": (0, NETSTAT),
        "tasklist.exe": (0, TASKLIST),
    }  # fmt: skip
    asked: list[list[str]] = []

    def windows_exe(name: str, args: list[str], timeout: float = 3.0) -> tuple[int, str, str]:
        asked.append([name, *args])
        key = name
        if name == "netsh.exe":
            key += " portproxy" if "portproxy" in args else f" excludedportrange {args[-1]}"
        code, out = answers[key]
        return code, out, ""

    monkeypatch.setattr(system, "windows_exe", windows_exe)
    answers["_asked"] = asked  # type: ignore[assignment]
    return answers


async def test_the_facts_come_from_every_tool_in_one_round(
    windows: dict[str, tuple[int, str]],
) -> None:
    facts = await windows_facts.gather([3000, 5173])
    assert (56638, 56737) in [(r.start, r.end) for r in facts.excluded]
    assert facts.portproxy[0].connect_address == "172.23.188.236"
    assert facts.owner(3000) == (4120, "node.exe") and facts.owner(5173) == (9876, "wslrelay.exe")
    ps = await facts.powershell()
    assert ps.reach[5173] == windows_facts.Reach("reached")
    assert ps.reach[3000].state == "refused"
    assert ps.hyperv is not None and (ps.hyperv.enabled, ps.hyperv.inbound) == (True, "Block")
    assert ps.iphlpsvc is not None and ps.iphlpsvc.running
    asked = cast("list[list[str]]", windows["_asked"])
    assert asked[0][0] == "powershell.exe"  # the slowest, started first
    powershell = asked[0]
    assert powershell[:3] == ["powershell.exe", "-NoProfile", "-NonInteractive"]
    assert "$ports=@(3000,5173)" in powershell[-1] and "ConvertTo-Json" in powershell[-1]


async def facts_for(windows: dict[str, tuple[int, str]], ports: list[int]) -> WindowsFacts:
    return await windows_facts.gather(ports)


async def test_a_port_in_a_reserved_range_fails_with_the_winnat_fixes(
    windows: dict[str, tuple[int, str]],
) -> None:
    facts = await facts_for(windows, [56700])
    (f,) = verdicts.excluded_ports([("tcp", 56700)], facts)
    assert (f.status, f.title) == (
        "fail",
        "TCP port 56700 is reserved by Windows (range 56638-56737)",
    )
    assert f.fix is not None and f.fix.commands == [
        "net stop winnat",
        "net start winnat",
        "netsh int ipv4 add excludedportrange protocol=tcp startport=56700 numberofports=1",
    ]
    assert "sudo" not in f.fix.text and "Administrator" in f.fix.text
    (clean,) = verdicts.excluded_ports([("tcp", 3000)], facts)
    assert clean.status == "ok"


async def test_a_portproxy_rule_to_an_old_vm_address_is_stale(
    windows: dict[str, tuple[int, str]],
) -> None:
    facts = await facts_for(windows, [])
    (f,) = verdicts.portproxy(facts, "172.23.180.5", set())
    assert f.status == "fail"
    assert f.title == (
        "portproxy 0.0.0.0:30000-50000 -> 172.23.188.236 is stale: the WSL VM is at 172.23.180.5 now"
    )
    assert f.fix is not None and f.fix.commands == [
        "netsh interface portproxy delete v4tov4 listenport=30000-50000 listenaddress=0.0.0.0",
        "wslnet forward 0.0.0.0:30000=wsl:30000",
    ]


async def test_a_portproxy_rule_on_a_relay_port_is_a_conflict(
    windows: dict[str, tuple[int, str]],
) -> None:
    facts = await facts_for(windows, [])
    (f,) = verdicts.portproxy(facts, "172.23.188.236", {31000})
    assert f.status == "warn" and "both want port 31000" in f.title


async def test_who_holds_each_port_on_windows(windows: dict[str, tuple[int, str]]) -> None:
    facts = await facts_for(windows, [3000, 5173, 8080, 9999])
    taken, relay, portproxy, nothing = verdicts.port_owners([3000, 5173, 8080, 9999], facts)
    assert (taken.status, taken.title) == (
        "fail",
        "Port 3000 is taken on Windows by node.exe, pid 4120: Windows localhost:3000 reaches "
        "it, not WSL",
    )
    assert (relay.status, relay.title) == (
        "ok",
        "Port 5173 on Windows: WSL's relay (wslrelay.exe, pid 9876)",
    )
    assert portproxy.status == "info" and "IP Helper" in portproxy.title
    assert nothing.status == "warn" and nothing.fix is not None
    assert nothing.fix.commands == ["wsl --shutdown"]


async def test_the_end_to_end_proof_and_the_hyperv_firewall(
    windows: dict[str, tuple[int, str]],
) -> None:
    windows["netstat.exe"] = (0, NETSTAT.replace("127.0.0.1:3000", "127.0.0.1:3001"))
    facts = await facts_for(windows, [3000, 5173])
    ps = await facts.powershell()
    missed, reached = verdicts.windows_reach([3000, 5173], facts, ps)
    assert missed.status == "fail" and missed.title.endswith("actively refused it 127.0.0.1:3000")
    assert reached.status == "ok"
    (hv,) = verdicts.hyperv_firewall("mirrored", ps)  # PS 5.1: 4 means Block
    assert hv.status == "warn" and hv.fix is not None
    assert hv.fix.commands[0].startswith("Set-NetFirewallHyperVVMSetting -Name '{40E0AC32")
    (nat,) = verdicts.hyperv_firewall("nat", ps)
    assert nat.status == "ok"


async def test_output_that_cannot_be_read_is_said_with_the_raw_text(
    windows: dict[str, tuple[int, str]],
) -> None:
    windows["netsh.exe portproxy"] = (0, "Listen on ipv4:\r\n0.0.0.0  80x  1.2.3.4  80\r\n")
    windows["powershell.exe"] = (124, "")
    facts = await facts_for(windows, [5173])
    (pp,) = verdicts.portproxy(facts, None, set())
    assert (
        pp.status == "warn" and pp.title == "Could not read netsh.exe output (its portproxy rules)"
    )
    assert "80x" in str(pp.evidence["raw"])
    (reach,) = verdicts.windows_reach([5173], facts, await facts.powershell())
    assert (reach.status, reach.title) == (
        "warn",
        "unknown: PowerShell did not answer within 3.5 s",
    )


# -- wslnet check on Windows itself --------------------------------------------------------
WIN_ENV = Environment("windows", None, "", None, "", "other", None, False)
INSIDE = (
    "nat\n@@ eth0\n2: eth0    inet 172.23.14.3/20 brd 172.23.15.255 scope global eth0\n"
    "@@ tcp\n  sl  local_address rem_address   st\n"
    "   0: 0100007F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n"
    "   1: 030E17AC:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 2 1\n"
)  # 127.0.0.1:5173 (the relay forwards it) and 172.23.14.3:8000 (eth0 only: it does not)


@pytest.fixture
def on_windows(
    windows: dict[str, tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> dict[str, tuple[int, str]]:
    answers = windows
    answers["wsl.exe --version"] = (0, body("win-wsl-version-4.txt"))
    answers["wsl.exe -l -v"] = (
        0,
        body("win-wsl-l-v-1.txt")
        .replace("* Ubuntu  ", "  Ubuntu  ")
        .replace("  Ubuntu-20.04", "* Ubuntu-20.04"),
    )
    answers["wsl.exe inside"] = (0, INSIDE)
    answers["netstat.exe"] = (0, NETSTAT.replace("127.0.0.1:3000", "127.0.0.1:9999"))
    plain = system.windows_exe

    def windows_exe(name: str, args: list[str], timeout: float = 3.0) -> tuple[int, str, str]:
        if name == "wsl.exe":
            key = "wsl.exe inside" if "-e" in args else f"wsl.exe {' '.join(args)}"
            code, out = answers[key]
            return code, out, ""
        return plain(name, args, timeout)

    monkeypatch.setattr(system, "windows_exe", windows_exe)
    monkeypatch.setattr(system, "which", lambda name: None)  # no docker.exe
    return answers


async def test_check_on_windows_runs_windows_checks_and_no_linux_ones(
    on_windows: dict[str, tuple[int, str]],
) -> None:
    findings = await runner.run(runner.select([]), Context(WIN_ENV, Options()))
    by = {f.id: f for f in findings}
    for linux in ("dns.resolver", "listeners.bind-address", "proxy.settings", "config.wslconf"):
        assert by[linux].status == "skip", by[linux]
    assert not [f for f in findings if "sudo" in f.title + f.detail + str(f.fix)]
    versions = [f.title for f in findings if f.id == "windows.wsl"]
    assert versions[0] == "WSL 2.0.9.0, kernel 5.15.133.1-1, Windows 10.0.22631.2715"
    assert "Ubuntu-20.04 (default): WSL2, Running" in versions
    listeners = {f.title: f.status for f in findings if f.id == "wsl.listeners"}
    assert listeners == {
        "tcp 127.0.0.1:5173: Windows localhost yes": "ok",
        "tcp 172.23.14.3:8000: Windows localhost no": "warn",
    }
    (reach,) = [f for f in findings if f.id == "windows.reach"]
    assert reach.title == "Windows localhost:5173 reaches the WSL listener"
    assert [f.status for f in findings if f.id == "windows.docker"] == ["skip"]


async def test_a_stopped_distribution_is_not_booted_and_says_so(
    on_windows: dict[str, tuple[int, str]],
) -> None:
    on_windows["wsl.exe -l -v"] = (0, "  NAME   STATE    VERSION\r\n* Debian Stopped  2\r\n")
    findings = await runner.run(
        runner.select(["windows.wsl", "wsl.listeners"]), Context(WIN_ENV, Options())
    )
    titles = [f.title for f in findings]
    assert (
        "Debian (default): WSL2, Stopped: not started by this check (--boot would start it)"
        in titles
    )
    assert "Debian is not running: its listeners are not read (--boot starts it)" in titles


def test_ip_wsl_on_windows_asks_wsl_exe_and_never_boots_by_itself(
    on_windows: dict[str, tuple[int, str]],
) -> None:
    from wslnet.hostaddr import find_wsl

    found = find_wsl(WIN_ENV)
    assert (found.address, found.source) == (
        "172.23.14.3",
        "wsl.exe -d Ubuntu-20.04 -e ip -4 -o addr show dev eth0",
    )
    on_windows["wsl.exe -l -v"] = (0, "  NAME   STATE    VERSION\r\n* Debian Stopped  2\r\n")
    stopped = find_wsl(WIN_ENV)
    assert (stopped.address, stopped.why_none) == (
        None,
        "Debian is not running (wslnet ip wsl --boot starts it)",
    )


def test_docker_verdicts() -> None:
    (linux,) = verdicts.docker(0, "linux|Docker Desktop", False)
    assert linux.title == "Docker (Docker Desktop) publishes ports on Windows localhost"
    wincontainers, toolbox = verdicts.docker(0, "windows|Windows Server", True)
    assert "Windows containers" in wincontainers.title
    assert toolbox.fix is not None and toolbox.fix.commands == ["docker-machine ip"]


async def test_the_windows_firewall_profile_of_wsls_adapter_without_a_rule(
    windows: dict[str, tuple[int, str]],
) -> None:
    doc = json.loads(POWERSHELL)
    doc.update(
        WslProfile=0,
        Profiles={"Name": "Public", "Enabled": 1, "DefaultInboundAction": 4},
        WslRules=0,
    )
    windows["powershell.exe"] = (0, json.dumps(doc))
    facts = await (await facts_for(windows, [])).powershell()
    blocked, hyperv = verdicts.windows_firewall("nat", facts)
    assert blocked.status == "warn"
    assert blocked.title.startswith("vEthernet (WSL) is in the Public firewall profile")
    assert blocked.fix is not None and "New-NetFirewallRule" in blocked.fix.commands[0]
    assert hyperv.status == "ok"  # the Hyper-V firewall's block matters in mirrored mode only
    doc["WslRules"] = 1
    windows["powershell.exe"] = (0, json.dumps(doc))
    admitted, _ = verdicts.windows_firewall(
        "nat", await (await facts_for(windows, [])).powershell()
    )
    assert admitted.status == "ok" and "1 rules admit WSL" in admitted.title


async def test_the_ports_of_a_configured_forwarder_are_checked_against_reserved_ranges(
    on_windows: dict[str, tuple[int, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "wslnet"
    folder.mkdir()
    (folder / "forward.toml").write_text('[[forward]]\nlisten = "56700"\ntarget = "wsl:3000"\n')
    monkeypatch.setenv("APPDATA", str(tmp_path))
    findings = await runner.run(
        runner.select(["windows.excluded-ports"]), Context(WIN_ENV, Options())
    )
    assert [f.title for f in findings if f.status == "fail"] == [
        "TCP port 56700 is reserved by Windows (range 56638-56737)"
    ]


async def test_a_lan_forward_rule_without_a_firewall_rule_gets_the_exact_command(
    on_windows: dict[str, tuple[int, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "wslnet"
    folder.mkdir()
    rule = '[[forward]]\nlisten = "0.0.0.0:2222"\ntarget = "wsl:22"\nallow = ["198.19.0.0/24"]\n'
    (folder / "forward.toml").write_text(rule)
    monkeypatch.setenv("APPDATA", str(tmp_path))
    doc = json.loads(POWERSHELL)
    doc["Inbound"] = {"Protocol": "TCP", "LocalPort": "3389"}  # PS 5.1 unwraps a single object
    on_windows["powershell.exe"] = (0, json.dumps(doc))
    findings = await runner.run(runner.select(["windows.firewall"]), Context(WIN_ENV, Options()))
    (lan,) = [f for f in findings if "LAN" in f.title]
    assert (
        lan.title
        == "wslnet forward listens on TCP port 2222 for the LAN, but no firewall rule admits it"
    )
    assert lan.fix is not None and lan.fix.commands == [
        'New-NetFirewallRule -DisplayName "wslnet 2222" -Direction Inbound -Protocol TCP -LocalPort 2222 -Action Allow'
    ]
    asked = cast("list[list[str]]", on_windows["_asked"])
    script = next(a for a in asked if a[0] == "powershell.exe")[-1]
    assert "Get-NetFirewallPortFilter -PolicyStore ActiveStore" in script


def test_the_doctor_reads_where_a_forwarder_listens_and_nothing_from_a_broken_file() -> None:
    from wslnet.check import forwarder

    text = '[[forward]]\nlisten = "0.0.0.0:8080"\n[[forward]]\nlisten = 5353\nproto = "udp"\n'
    assert [(x.proto, x.port, x.loopback) for x in forwarder.parse(text)] == [
        ("tcp", 8080, False),
        ("udp", 5353, True),
    ]
    assert forwarder.parse('[[forward]]\nlisten = "0.0.0.0:99999"\n') == []
    assert forwarder.parse("[[forward]\n") == []
