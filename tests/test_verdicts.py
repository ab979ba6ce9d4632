"""The doctor's verdicts, in process: facts in (recorded or built here), findings out."""

from __future__ import annotations

from pathlib import Path

import pytest

from wslnet.check import verdicts
from wslnet.check.verdicts import judge
from wslnet.facts import procnet, proxy, resolv, wslconfig
from wslnet.hostaddr import Candidate, HostAddress
from wslnet.probe.dns import DnsResult
from wslnet.probe.raw import ArpResult, EchoResult, MtuResult
from wslnet.verdict import HostPath, Listener
from wslnet.where import Environment

SAMPLES = Path(__file__).parent / "samples"
VM = ["198.18.5.20"]
FWD = "wslnet forward 3000"  # durable: the `wsl` target follows the VM


def entry(address: str, port: int = 3000, proto: str = "tcp") -> procnet.SocketEntry:
    family = "ipv6" if ":" in address else "ipv4"
    state = procnet.TCP_LISTEN if proto == "tcp" else procnet.UDP_UNCONNECTED
    return procnet.SocketEntry(proto, family, address, port, "0.0.0.0", 0, state, 0, 1)  # type: ignore[arg-type]


# -- listeners: section 4 of the shared facts, one case per rule --------------------------
@pytest.mark.parametrize(
    ("address", "proto", "reach", "cause", "reason", "command"),
    [
        ("0.0.0.0", "tcp", "yes", "relayed", "WSL's relay forwards 127.0.0.1:3000", None),
        ("127.0.0.1", "tcp", "yes", "relayed", "WSL's relay forwards 127.0.0.1:3000", None),
        ("::", "tcp", "ipv6-only", "ipv6-only", "reachable only as [::1]:3000", FWD),
        ("::1", "tcp", "ipv6-only", "ipv6-only", "reachable only as [::1]:3000", FWD),
        ("127.0.0.2", "tcp", "no", "bound-to-other-loopback", "not other 127.x", None),
        ("198.18.5.20", "tcp", "no", "bound-to-eth0", "not forward the eth0 address", FWD),
        ("0.0.0.0", "udp", "no", "udp-not-relayed", "UDP is never forwarded", "forward udp/3000"),
    ],
)  # fmt: skip
def test_nat_listener_verdicts(
    address: str, proto: str, reach: str, cause: str, reason: str, command: str | None
) -> None:
    r = judge(entry(address, proto=proto), "nat", True, VM)
    assert (r.windows_localhost, r.cause) == (reach, cause)
    assert reason in r.reason
    if command is None:
        assert r.fix is None or r.fix.commands == []
    else:
        assert r.fix is not None
        assert [c for c in r.fix.commands if c.endswith(command)] == r.fix.commands
        assert r.fix.commands[0].startswith("wslnet forward ")
        assert r.fix.where == "windows"  # the forwarder runs on Windows


def test_localhost_forwarding_off_makes_every_tcp_listener_unreachable() -> None:
    r = judge(entry("0.0.0.0"), "nat", False, VM)
    assert (r.windows_localhost, r.reason) == ("no", "localhostForwarding=false in .wslconfig")
    assert r.cause == "localhost-forwarding-off"
    assert r.fix is not None and r.fix.commands == ["wslnet forward 3000"]


def test_mirrored_mode_reaches_ipv4_only() -> None:
    assert judge(entry("127.0.0.1"), "mirrored", True, VM).windows_localhost == "yes"
    v6 = judge(entry("::1"), "mirrored", True, VM)
    assert v6.windows_localhost == "no" and "IPv4 only" in v6.reason
    assert v6.fix is not None and v6.fix.text == "bind 0.0.0.0:3000 or 127.0.0.1:3000"


def test_wsl1_and_outside_wsl() -> None:
    assert judge(entry("127.0.0.1"), "wsl1", True, []).windows_localhost == "yes"
    outside = judge(entry("127.0.0.1"), None, True, [])
    assert (outside.windows_localhost, outside.fix) == ("n/a", None)


def test_outside_wsl_the_listeners_are_one_info_line_not_a_finding_each() -> None:
    found = verdicts.judge_all([entry("127.0.0.1", p) for p in range(3000, 3013)], None, True, [])
    (f,) = verdicts.listeners(found, [], None, None)
    assert (f.status, f.title) == (
        "info",
        "13 listening sockets (not in WSL: Windows reachability does not apply)",
    )
    assert f.detail.startswith("tcp/3000, tcp/3001")


def listener(address: str, port: int, reach: str = "yes") -> Listener:
    r = judge(entry(address, port), "nat", True, VM)
    return Listener(
        "tcp", "ipv4", address, port, 42, "node", r.windows_localhost, r.cause, r.reason,
        r.vm_address, False, r.fix,
    )  # fmt: skip


def test_listener_findings_carry_the_fix_and_its_commands() -> None:
    found = [listener("127.0.0.1", 5173), listener("198.18.5.20", 8000)]
    ok, bad = verdicts.listeners(found, [], None, "nat")
    assert (ok.status, ok.title) == (
        "ok",
        "tcp 127.0.0.1:5173 (node, pid 42): Windows localhost yes",
    )
    assert bad.status == "warn" and bad.fix is not None
    assert (bad.fix.commands, bad.fix.where) == (["wslnet forward 8000"], "windows")
    assert bad.evidence["fix_commands"] == bad.fix.commands


def test_port_focus_with_nothing_listening_fails_and_says_how_to_look() -> None:
    (f,) = verdicts.listeners([listener("127.0.0.1", 5173)], [], 9999, "nat")
    assert (f.status, f.title) == ("fail", "Nothing listens on port 9999")
    assert "ss -ltnup" in f.detail


def test_unreadable_proc_lines_are_warnings_and_no_sockets_is_info() -> None:
    from wslnet.facts import Problem

    (f,) = verdicts.listeners([], [Problem(3, "garbage", "bad address")], None, "nat")
    assert f.status == "warn" and "line 3" in f.detail
    assert [x.status for x in verdicts.listeners([], [], None, "nat")] == ["info"]


# -- configuration -----------------------------------------------------------------------
def conf(text: str) -> wslconfig.WslConfig:
    return wslconfig.parse(text)


def test_mirrored_asked_but_nat_running_says_restart() -> None:
    (f,) = verdicts.config_mode(conf("[wsl2]\nnetworkingMode=mirrored\n"), "nat")
    assert f.status == "warn" and f.fix is not None and f.fix.commands == ["wsl --shutdown"]


def test_matching_config_is_ok_and_no_config_is_skipped() -> None:
    assert [f.status for f in verdicts.config_mode(conf("[wsl2]\nmemory=4GB\n"), "nat")] == ["ok"]
    assert [f.status for f in verdicts.config_mode(None, "nat")] == ["skip"]


def test_each_bad_wslconfig_line_is_a_warning_with_the_file_to_edit() -> None:
    text = (SAMPLES / "wslconfig-17a-misspelled-networkMode.ini").read_text()
    findings = verdicts.wslconfig_file("/c/.wslconfig", conf(text.split("\n", 1)[1]))
    assert findings and {f.status for f in findings} == {"warn"}
    assert any("networkingMode" in f.detail for f in findings)
    assert findings[0].fix is not None and "edit /c/.wslconfig" in findings[0].fix.text


# -- the host ----------------------------------------------------------------------------
def test_host_address_verdicts() -> None:
    gw = Candidate("198.18.0.1", "default gateway", "the host", True)
    tunnel = Candidate("10.255.255.254", "nameserver", "the DNS tunnel, not the host", False)
    (f,) = verdicts.host_address(HostAddress("198.18.0.1", "default gateway", [gw, tunnel]))
    assert (f.status, f.detail) == ("ok", "the DNS tunnel, not the host")
    (none,) = verdicts.host_address(HostAddress(None, None, [], "no default route"))
    assert none.status == "fail" and none.detail == "no default route"


@pytest.mark.parametrize(
    ("state", "status", "in_fix"),
    [
        ("open", "ok", None),
        ("refused", "fail", "netstat -ano | findstr :5432"),
        ("filtered", "fail", "Windows firewall"),
        ("unreachable", "fail", "admin-prohibited"),
    ],
)
def test_windows_port_verdicts(state: str, status: str, in_fix: str | None) -> None:
    f = verdicts.windows_port(state, "t", "198.18.0.1", 5432, {})
    assert f.status == status
    if in_fix is None:
        assert f.fix is None
    else:
        assert f.fix is not None and in_fix in f.fix.text
    if state == "filtered":
        assert f.fix is not None and f.fix.commands == [verdicts.FIREWALL_RULE]


def test_layer2_gone_means_restart_and_echo_dropped_means_firewall() -> None:
    gone = verdicts.host_layer2(
        "198.18.0.1", ArpResult("198.18.0.1", "eth0", None, None), EchoResult("h", False, None)
    )
    assert (
        gone.status == "fail" and gone.fix is not None and gone.fix.commands == ["wsl --shutdown"]
    )
    arp = ArpResult("198.18.0.1", "eth0", "00:15:5d:00:00:01", 0.001)
    dropping = verdicts.host_layer2("198.18.0.1", arp, EchoResult("h", False, None))
    assert dropping.status == "warn" and dropping.fix == verdicts.firewall_fix()
    up = verdicts.host_layer2("198.18.0.1", arp, EchoResult("h", True, 0.0005))
    assert (up.status, up.title) == (
        "ok",
        "198.18.0.1 is up: ARP from 00:15:5d:00:00:01, echo in 0.5 ms",
    )


def test_path_mtu_below_the_interface_gives_the_ip_link_command() -> None:
    low = verdicts.path_mtu(MtuResult("h", "eth0", 1500, 1350, "icmp frag-needed", 3))
    assert low.status == "fail" and low.fix is not None
    assert low.fix.commands == ["sudo ip link set dev eth0 mtu 1350"]
    assert (
        verdicts.path_mtu(MtuResult("h", "eth0", 1500, 1500, "full size got through", 1)).status
        == "ok"
    )
    assert verdicts.path_mtu(MtuResult("h", "eth0", 1500, None, "no answer", 9)).status == "skip"


# -- DNS ---------------------------------------------------------------------------------
def test_missing_resolv_conf_and_no_nameserver_fail() -> None:
    (missing,) = verdicts.resolv_conf(None, None)
    assert missing.status == "fail" and missing.fix is not None
    (empty,) = verdicts.resolv_conf("", resolv.parse(""))
    assert (empty.status, empty.title) == ("fail", "No nameserver in /etc/resolv.conf")


def test_dead_resolver_fix_speaks_wsl_only_inside_wsl() -> None:
    conf_ = resolv.parse("nameserver 198.18.0.1\n")
    dead = DnsResult("198.18.0.1", False, 1.0, "no answer within 1 s")
    inside = verdicts.resolver_answer(dead, conf_, in_wsl=True)
    outside = verdicts.resolver_answer(dead, conf_, in_wsl=False)
    assert inside.fix is not None and "dnsTunneling=true" in inside.fix.text
    assert outside.fix is not None and "dnsTunneling" not in outside.fix.text
    alive = verdicts.resolver_answer(DnsResult("198.18.0.1", True, 0.004, "NXDOMAIN"), conf_, True)
    assert (alive.status, alive.title) == ("ok", "Resolver 198.18.0.1 answers (NXDOMAIN, 4 ms)")


def test_container_environment_says_whose_listeners_these_are() -> None:
    env = Environment("container", "nat", "fingerprint", None, "5.15-microsoft-standard-WSL2",
                      "wsl2", "docker", False)  # fmt: skip
    first, second = verdicts.environment(env)
    assert first.title == "Running in a docker container, nat networking"
    assert "publish ports" in second.detail


# -- one story for a silent host (facts first, then the verdict) ---------------------------
def path(interface: str | None = "eth0", arp: bool | None = True) -> HostPath:
    return HostPath("198.18.0.1", interface, "eth0", arp)


@pytest.mark.parametrize(
    ("state", "facts", "detail", "command"),
    [
        ("filtered", path(arp=False), "does not answer ARP on eth0", "wsl --shutdown"),
        ("filtered", path("br-x"), "leaves through br-x, not eth0", "ip route get 198.18.0.1"),
        ("filtered", path(None), "there is no route to 198.18.0.1", "wsl --shutdown"),
        ("filtered", path(), "the Windows firewall drops", verdicts.FIREWALL_RULE),
        ("unreachable", path(), "its firewall rejects it", verdicts.FIREWALL_RULE),
        ("unreachable", path(arp=False), "does not answer ARP", "wsl --shutdown"),
    ],
)
def test_silence_is_the_firewall_only_when_the_host_is_there(
    state: str, facts: HostPath, detail: str, command: str
) -> None:
    f = verdicts.windows_port(state, "t", "198.18.0.1", 5432, {}, "", facts)
    assert f.status == "fail" and detail in f.detail
    assert f.fix is not None and f.fix.commands == [command]


def test_a_refused_port_is_never_blamed_on_the_path() -> None:
    f = verdicts.windows_port("refused", "t", "198.18.0.1", 5432, {}, "", path(arp=False))
    assert f.fix is not None and "bind the Windows service to 0.0.0.0" in f.fix.text


# -- DNS, proxies, mirrored mode -------------------------------------------------------------
def test_resolver_verdicts_name_the_actual_failure() -> None:
    conf_ = resolv.parse("nameserver 127.0.0.53\n")
    stub = verdicts.resolver_answer(DnsResult("127.0.0.53", False, 0.001, "refused"), conf_, True)
    assert stub.fix is not None and stub.fix.commands == ["sudo systemctl restart systemd-resolved"]
    slow = verdicts.resolver_answer(DnsResult("198.18.0.1", True, 1.2, "NXDOMAIN"), conf_, True)
    assert slow.status == "warn" and "slowly (1200 ms)" in slow.title
    udp_only = verdicts.resolver_answer(
        DnsResult("198.18.0.1", True, 0.01, "NXDOMAIN"), conf_, True,
        DnsResult("198.18.0.1", False, 0.001, "TCP: connection refused"),
    )  # fmt: skip
    assert udp_only.status == "warn" and "not over TCP" in udp_only.title


def test_a_dangling_resolv_conf_link_outside_wsl_has_no_wsl_fix() -> None:
    (f,) = verdicts.resolv_conf(None, None, "/run/x", in_wsl=False)
    assert f.fix is not None and f.fix.commands == ["sudo rm /etc/resolv.conf"]


def test_proxy_verdicts() -> None:
    local = proxy.parse_url("HTTP_PROXY", "http://user:pw@127.0.0.1:3128")
    assert local is not None and (local.host, local.port, local.loopback) == (
        "127.0.0.1",
        3128,
        True,
    )
    assert verdicts.proxy(local, "refused", "nat").status == "warn"
    assert verdicts.proxy(local, "refused", "mirrored").title.endswith("does not answer (refused)")
    assert verdicts.proxy(local, "open", "nat").status == "ok"  # a proxy inside WSL: fine
    assert proxy.parse_url("x", "DIRECT") is None and proxy.parse_url("x", "http://") is None
    (apt,) = proxy.parse_apt("/etc/apt/apt.conf", 'Acquire::https::Proxy "host:8080";\n')
    assert (apt.source, apt.host, apt.port) == ("/etc/apt/apt.conf:1", "host", 8080)


def test_mirrored_mode_findings() -> None:
    on = wslconfig.parse("[experimental]\nhostAddressLoopback=true\n")
    statuses = [(f.status, f.title[:30]) for f in verdicts.mirrored(True, on)]
    assert [s for s, _ in statuses] == ["info"]  # only the Hyper-V firewall note
    broken = verdicts.mirrored(False, None)
    assert broken[0].status == "fail" and len(broken) == 3


def test_wsl_own_sockets_are_info_and_named() -> None:
    tunnel = judge(entry("10.255.255.254", 53, "udp"), "nat", True, VM)
    assert tunnel.windows_localhost == "n/a" and "WSL's DNS tunnel" in tunnel.reason
    stub = judge(entry("127.0.0.53", 53), "nat", True, VM)
    assert "systemd-resolved" in stub.reason


def test_the_dns_tunnel_is_known_by_where_it_lives_on_lo() -> None:
    """WSL puts its tunnel on lo (ip-addr-nat-3.txt: `inet 10.255.255.254/32 ... scope
    global lo`); a configured dnsTunnelingIpAddress lands there too."""
    assert resolv.tunnel_addresses(["127.0.0.1"]) == {"10.255.255.254"}
    custom = resolv.tunnel_addresses(["127.0.0.1", "198.18.255.254"])
    assert custom == {"10.255.255.254", "198.18.255.254"}
    lo = {"lo": ["127.0.0.1", "198.18.255.254"], "eth0": ["198.18.5.20"]}
    env = Environment("wsl2", "nat", "test", None, "", "wsl2", None, False, lo)
    assert env.dns_tunnel == custom


def test_a_configured_dns_tunnel_is_judged_as_the_tunnel() -> None:
    from wslnet.hostaddr import judge_nameserver

    tunnel = resolv.tunnel_addresses(["198.18.255.254"])
    conf_ = resolv.parse("# automatically generated by WSL\nnameserver 198.18.255.254\n")
    candidate = judge_nameserver("198.18.255.254", "198.18.0.1", conf_, tunnel)
    assert (candidate.usable, candidate.verdict) == (
        False,
        "198.18.255.254 is the DNS tunnel address on lo, not the host",
    )
    listener = judge(entry("198.18.255.254", 53, "udp"), "nat", True, VM, tunnel=tunnel)
    assert listener.windows_localhost == "n/a" and "WSL's DNS tunnel" in listener.reason
    dead = DnsResult("198.18.255.254", False, 1.0, "no answer within 1 s")
    finding = verdicts.resolver_answer(dead, conf_, True, tunnel=tunnel)
    assert finding.title.startswith("WSL's DNS tunnel 198.18.255.254 does not answer")
    # Without knowing lo, the same address is just a resolver copied from Windows.
    plain = verdicts.resolver_answer(dead, conf_, True)
    assert not plain.title.startswith("WSL's DNS tunnel")
