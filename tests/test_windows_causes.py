"""Issue 21 in process: the Windows facts read as Windows PowerShell 5.1 prints them
(enums as numbers, a single object unwrapped), and the causes the doctor names (another
Windows program on a WSL port, a listener of another distribution, networking off, mirrored
mode's ignoredPorts, portproxy without the IP Helper service, a VPN in NAT mode, a Windows
proxy on loopback, a misspelled .wslconfig value). Outputs come through system.windows_exe,
the one seam where Windows programs run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_windows_checks import NETSTAT, POWERSHELL_DOC, TASKLIST
from wslnet import system
from wslnet.check import runner, verdicts, windows_facts
from wslnet.check.context import Context, Options
from wslnet.facts import wslconfig
from wslnet.facts.proxy import parse_url
from wslnet.verdict import Listener
from wslnet.where import Environment

SAMPLES = Path(__file__).parent / "samples"
EMPTY_EXCLUDED = "\r\nProtocol tcp Port Exclusion Ranges\r\n\r\nStart Port    End Port\r\n" \
                 "----------    --------\r\n\r\n* - Administered port exclusions.\r\n"  # fmt: skip


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, str]]:
    """What each Windows program answers (by program; netsh by its last word)."""
    table = {
        "powershell.exe": (0, json.dumps(POWERSHELL_DOC)),
        "netsh.exe protocol=tcp": (0, EMPTY_EXCLUDED),
        "netsh.exe protocol=udp": (0, EMPTY_EXCLUDED.replace("tcp", "udp")),
        "netsh.exe all": (0, ""),  # no portproxy rules prints nothing
        "netstat.exe": (0, NETSTAT),
        "tasklist.exe": (0, TASKLIST),
    }

    def windows_exe(name: str, args: list[str], timeout: float = 3.0) -> tuple[int, str, str]:
        key = f"{name} {args[-1]}" if name == "netsh.exe" else name
        code, out = table[key]
        return code, out, ""

    monkeypatch.setattr(system, "windows_exe", windows_exe)
    return table


def ps_answer(answers: dict[str, tuple[int, str]], **changes: object) -> None:
    answers["powershell.exe"] = (0, json.dumps({**POWERSHELL_DOC, **changes}))


# -- facts read as 5.1 prints them ---------------------------------------------------------
async def test_a_hyperv_firewall_switched_off_prints_0_and_is_not_blocking(
    answers: dict[str, tuple[int, str]],
) -> None:
    ps_answer(answers, HyperV={"Enabled": 0, "DefaultInboundAction": 4, "DefaultOutboundAction": 2})
    ps = await (await windows_facts.gather([])).powershell()
    (hv,) = verdicts.hyperv_firewall("mirrored", ps)
    assert (hv.status, hv.title) == ("ok", "Hyper-V firewall: off for WSL")
    ps_answer(answers, HyperV={"Enabled": 2, "DefaultInboundAction": 4})  # NotConfigured: on
    ps = await (await windows_facts.gather([])).powershell()
    (hv,) = verdicts.hyperv_firewall("mirrored", ps)
    assert hv.status == "warn"


async def test_a_domain_network_is_judged_by_the_domain_firewall_profile(
    answers: dict[str, tuple[int, str]],
) -> None:
    profiles = [{"Name": n, "Enabled": 1, "DefaultInboundAction": 4 if n == "Domain" else 2}
                for n in ("Domain", "Private", "Public")]  # fmt: skip
    ps_answer(answers, WslProfile="DomainAuthenticated", Profiles=profiles, WslRules=0)
    ps = await (await windows_facts.gather([])).powershell()
    blocked, _ = verdicts.windows_firewall("nat", ps)
    assert (blocked.status, blocked.title) == (
        "warn",
        "vEthernet (WSL) is in the Domain firewall profile, which blocks inbound traffic, "
        "and no rule admits WSL",
    )


async def test_an_unfinished_connect_is_not_proved_and_netstat_names_the_relay(
    answers: dict[str, tuple[int, str]],
) -> None:
    # Windows retries a refused loopback connect for ~2 s: after 300 ms it is not done.
    ps_answer(answers, Reach={"Port": 5173, "Done": False, "Reached": False, "Error": ""})
    facts = await windows_facts.gather([5173])
    (f,) = verdicts.windows_reach([5173], facts, await facts.powershell())
    assert (f.status, f.title) == (
        "info",
        "Windows localhost:5173: not proved (the connection test had not finished after "
        "300 ms); netstat shows wslrelay.exe (pid 9876) listening",
    )


@pytest.mark.parametrize(
    ("filters", "admitting"),
    [
        ({"Protocol": "TCP", "LocalPort": "2222"}, 1),
        ({"Protocol": "TCP", "LocalPort": "2000-2300"}, 1),
        ({"Protocol": "TCP", "LocalPort": ["80", "443", "2222"]}, 1),
        ({"Protocol": "Any", "LocalPort": "Any"}, 1),  # what Windows' own prompt creates
        ({"Protocol": "UDP", "LocalPort": "Any"}, 0),
        ({"Protocol": "TCP", "LocalPort": "RPC"}, 0),
        ([{"Protocol": "TCP", "LocalPort": "Any"}, {"Protocol": "6", "LocalPort": "2222"}], 2),
    ],
)
async def test_inbound_rules_match_ranges_lists_and_any(
    answers: dict[str, tuple[int, str]], filters: object, admitting: int
) -> None:
    ps_answer(answers, Inbound=filters)
    ps = await (await windows_facts.gather([], [("tcp", 2222)])).powershell()
    assert ps.admitting("tcp", 2222) == admitting
    findings = verdicts.lan_rules(ps, [("tcp", 2222)]) if admitting else []
    assert all(f.status == "ok" for f in findings)


async def test_a_powershell_that_does_not_answer_in_time_is_unknown_never_ok_or_fail(
    answers: dict[str, tuple[int, str]],
) -> None:
    answers["powershell.exe"] = (124, "")
    facts = await windows_facts.gather([5173], [("tcp", 2222)])
    ps = await facts.powershell()
    reach = verdicts.windows_reach([5173], facts, ps)
    for findings in (reach, verdicts.windows_firewall("nat", ps), verdicts.vpn(ps, "nat")):
        (f,) = findings
        assert (f.status, f.title) == ("warn", "unknown: PowerShell did not answer within 3.5 s")


@pytest.mark.parametrize(
    "text",
    [
        "The following command was not found: interface ipv4 show excludedportrange.\r\n",
        "\x00\x13garbage\xff",
        "\r\nProtocol tcp Port Exclusion Ranges\r\n\r\nStart Port    End Port\r\n"
        "----------    --------\r\n      5357     ",  # cut off mid-row
        "",
    ],
)
async def test_netsh_output_that_is_not_the_table_is_could_not_read_never_ok(
    answers: dict[str, tuple[int, str]], text: str
) -> None:
    answers["netsh.exe protocol=tcp"] = (0, text)
    facts = await windows_facts.gather([])
    (f,) = verdicts.excluded_ports([("tcp", 5357)], facts)
    assert (f.status, f.title) == (
        "warn",
        "Could not read netsh.exe output (its reserved port ranges)",
    )


@pytest.mark.parametrize(
    "text",
    [
        "Der Befehl wurde nicht gefunden.\r\n",
        "\r\nListen on ipv4:             Connect to ipv4:\r\n\r\nAddress         Port        "
        "Address         Port\r\n--------------- ----------  --------------- ----------\r\n"
        "0.0.0.0         2222        198.18.5.20",
    ],
)
async def test_portproxy_garbage_or_cut_off_is_could_not_read(
    answers: dict[str, tuple[int, str]], text: str
) -> None:
    answers["netsh.exe all"] = (0, text)
    facts = await windows_facts.gather([])
    (f,) = verdicts.portproxy(facts, None, set())
    assert (f.status, f.title) == ("warn", "Could not read netsh.exe output (its portproxy rules)")


@pytest.mark.parametrize(
    ("marker", "wsl_conf", "why"),
    [
        ("disabled\ninterpreter /init\nflags: PF\noffset 0\nmagic 4d5a\n", None,
         "interop is off (/proc/sys/fs/binfmt_misc/WSLInterop reads 'disabled')"),
        ("enabled\ninterpreter /init\n", "[interop]\nenabled=false\n",
         "interop is off ([interop] enabled=false in /etc/wsl.conf)"),
    ],
)  # fmt: skip
async def test_interop_off_skips_every_windows_check_and_launches_nothing(
    monkeypatch: pytest.MonkeyPatch, marker: str, wsl_conf: str | None, why: str
) -> None:
    files = {system.INTEROP_MARKER: marker, "/etc/wsl.conf": wsl_conf}
    real = system.read_text
    monkeypatch.setattr(
        system, "read_text", lambda p, limit=0: files[str(p)] if str(p) in files else real(p)
    )
    launched: list[str] = []

    def execute(argv: list[str], timeout: float) -> tuple[int, str, str]:
        launched.append(argv[0])
        return 127, "", ""

    monkeypatch.setattr(system, "execute", execute)
    env = Environment("wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": []})
    findings = await runner.run(runner.select(["windows"]), Context(env, Options()))
    on_windows_only = "runs on Windows (this is wsl2)"
    assert {(f.status, f.detail) for f in findings if f.detail != on_windows_only} == {
        ("skip", why)
    }
    assert system.windows_userprofile() is None
    assert [x for x in launched if x.endswith(".exe") or x == "wslvar"] == []


async def test_userprofile_is_asked_of_windows_once_per_run(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, tuple[int, str]]
) -> None:
    asked: list[int] = []

    def userprofile() -> str | None:
        asked.append(1)
        return None

    monkeypatch.setattr(system, "windows_userprofile", userprofile)
    monkeypatch.setattr(system, "interop_status", lambda in_wsl: None)
    env = Environment("wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": []})
    await runner.run(runner.select([]), Context(env, Options(raw=False)))
    assert asked == [1]


# -- the causes ------------------------------------------------------------------------------
async def test_docker_desktop_on_a_wsl_port_is_what_windows_localhost_reaches(
    answers: dict[str, tuple[int, str]],
) -> None:
    answers["netstat.exe"] = (
        0,
        NETSTAT + "  TCP    0.0.0.0:5432     0.0.0.0:0        LISTENING   7788\r\n",
    )
    answers["tasklist.exe"] = (
        0,
        TASKLIST + '"com.docker.backend.exe","7788","Console","1","90,000 K"\r\n',
    )
    ps_answer(answers, Reach={"Port": 5432, "Done": True, "Reached": True, "Error": ""})
    facts = await windows_facts.gather([5432])
    (owner,) = verdicts.port_owners([5432], facts)
    (reach,) = verdicts.windows_reach([5432], facts, await facts.powershell())
    for f in (owner, reach):
        assert (f.status, f.title) == (
            "fail",
            "Port 5432 is taken on Windows by com.docker.backend.exe, pid 7788: Windows "
            "localhost:5432 reaches it, not WSL",
        )
    assert owner.detail.startswith("Docker Desktop publishes a container on it")


def listener(port: int, pid: int | None, address: str = "0.0.0.0") -> Listener:
    return Listener("tcp", "ipv4", address, port, pid, "node" if pid else None, "yes",
                    "relayed", "", True, False, None)  # fmt: skip


def test_a_listener_of_another_distribution_is_never_blamed_on_this_one() -> None:
    (f,) = verdicts.unowned([listener(3000, None), listener(8080, 412)], all_visible=True)
    assert (f.status, f.title) == (
        "info",
        "tcp 0.0.0.0:3000 belongs to a process outside this distribution (all WSL2 "
        "distributions share one network namespace)",
    )
    (mine,) = verdicts.unowned([listener(8080, 412)], all_visible=True)
    assert mine.status == "ok"
    (unsure,) = verdicts.unowned([listener(3000, None)], all_visible=False)
    assert "not visible to this user" in unsure.title


@pytest.mark.parametrize(
    ("mode", "interfaces", "why"),
    [
        ("none", {"lo": ["127.0.0.1"]}, "networkingMode=none"),
        ("nat", {"lo": ["127.0.0.1"]}, "no eth0 interface"),
    ],
)
async def test_networking_off_by_configuration_is_said_and_the_host_is_not_hunted(
    mode: str, interfaces: dict[str, list[str]], why: str
) -> None:
    env = Environment("wsl2", mode, "wslinfo --networking-mode", "Ubuntu", "", "wsl2", None,
                      False, interfaces)  # fmt: skip
    findings = await runner.run(
        runner.select(["environment", "host.address"]), Context(env, Options())
    )
    off = [f for f in findings if f.status == "fail"]
    assert [f.title for f in off] == [
        f"Networking is off in this WSL VM ({why}): only loopback exists"
    ]
    (host,) = [f for f in findings if f.id == "host.address"]
    assert host.status == "skip" and "ip route" not in str(host.fix)


def test_ignored_ports_naming_a_wsl_listener() -> None:
    conf = wslconfig.parse(
        "[wsl2]\nnetworkingMode=mirrored\n[experimental]\nignoredPorts=3000,3001\n"
    )
    (f,) = verdicts.ignored_ports(conf, [22, 3001])
    assert (f.status, f.title) == (
        "warn",
        "Port 3001 is in ignoredPorts: Windows does not route it to the WSL listener",
    )
    (clean,) = verdicts.ignored_ports(conf, [22])
    assert clean.status == "ok"


async def test_portproxy_rules_with_the_ip_helper_service_stopped_do_nothing(
    answers: dict[str, tuple[int, str]],
) -> None:
    answers["netsh.exe all"] = (
        0,
        (SAMPLES / "win-netsh-portproxy-1.txt").read_text().split("\n", 1)[1],
    )
    ps_answer(answers, IpHelper={"Status": 1, "StartType": 4})  # Stopped, Disabled
    facts = await windows_facts.gather([])
    helper, _rule = verdicts.portproxy(facts, None, set(), await facts.powershell())
    assert (helper.status, helper.title) == (
        "fail",
        "The IP Helper service (iphlpsvc) is stopped (start: Disabled): the 1 portproxy "
        "rules do nothing",
    )
    assert helper.fix is not None and helper.fix.commands == [
        "sc.exe config iphlpsvc start= auto",
        "net start iphlpsvc",
    ]


@pytest.mark.parametrize(
    ("description", "product"),
    [("Cisco AnyConnect Secure Mobility Client Virtual Miniport Adapter for Windows x64",
      "Cisco AnyConnect"),
     ("PANGP Virtual Ethernet Adapter Secure", "GlobalProtect"),
     ("Zscaler Network Adapter 1.0.2.0", "Zscaler"),
     ("Fortinet SSL VPN Virtual Ethernet Adapter", "FortiClient"),
     ("Juniper Networks Virtual Adapter", "Ivanti/Pulse"),
     ("TAP-Windows Adapter V9", "OpenVPN"),
     ("WireGuard Tunnel", "WireGuard")],
)  # fmt: skip
async def test_a_vpn_adapter_in_nat_mode_when_dns_stops_answering(
    answers: dict[str, tuple[int, str]], description: str, product: str
) -> None:
    ps_answer(answers, Adapters=[
        {"Name": "Wi-Fi", "InterfaceDescription": "Intel(R) Wi-Fi 6 AX201 160MHz", "Metric": 35},
        {"Name": "Ethernet 3", "InterfaceDescription": description, "Metric": 1},
    ])  # fmt: skip
    ps = await (await windows_facts.gather([])).powershell()
    (f,) = verdicts.vpn(ps, "nat", dns_answers=False)
    assert (f.status, f.title) == (
        "fail",
        f"DNS does not answer while the {product} (Ethernet 3: {description}) VPN is up on "
        "Windows (NAT mode)",
    )
    assert f.fix is not None and "dnsTunneling=true" in f.fix.text and "wsl-vpnkit" in f.fix.text
    assert f.fix.commands == [
        'Set-NetIPInterface -InterfaceAlias "Ethernet 3" -InterfaceMetric 6000'
    ]
    ps.adapters = ps.adapters[:1]
    (fine,) = verdicts.vpn(ps, "nat", dns_answers=False)
    assert fine.status == "ok"


def test_a_proxy_setting_at_the_host_while_the_windows_proxy_listens_on_loopback() -> None:
    p = parse_url("HTTPS_PROXY", "http://198.18.0.1:3128")
    assert p is not None
    f = verdicts.proxy_on_windows_loopback(p, "198.18.0.1", ["127.0.0.1"], "nat")
    assert f is not None and (f.status, f.title) == (
        "fail",
        "HTTPS_PROXY points at the Windows host 198.18.0.1:3128, but the proxy there "
        "listens on 127.0.0.1 only",
    )
    assert f.fix is not None and "autoProxy=true" in f.fix.text
    assert verdicts.proxy_on_windows_loopback(p, "198.18.0.1", ["0.0.0.0"], "nat") is None
    assert verdicts.proxy_on_windows_loopback(p, "198.18.0.1", ["127.0.0.1"], "mirrored") is None


def test_a_misspelled_networking_mode_is_named_without_restart_advice() -> None:
    conf = wslconfig.parse("[wsl2]\nnetworkingMode=mirored\n")
    (f,) = verdicts.wslconfig_file("C:\\Users\\me\\.wslconfig", conf)
    assert (f.status, f.title) == (
        "warn",
        "C:\\Users\\me\\.wslconfig line 2: networkingMode=mirored is misspelled: "
        "networkingMode=mirrored?",
    )
    assert f.fix is not None and "shutdown" not in f.fix.text + str(f.fix.commands)
    (mode,) = verdicts.config_mode(conf, "nat")  # WSL keeps its default: no mismatch to restart
    assert mode.status == "ok"
