"""Parsers on real samples (tests/samples, copied from shared/samples: each file's first
line says where it came from), and on broken, truncated, huge and non-UTF-8 input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import imported_modules
from wslnet.facts import kernel, procnet, resolv, route, wslconfig

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def body(name: str) -> str:
    """The sample without its `# source:` line."""
    return sample(name).split("\n", 1)[1]


# -- /proc/net ---------------------------------------------------------------------------
def test_proc_net_tcp_on_wsl2_shows_the_dns_tunnel_listener() -> None:
    entries, problems = procnet.parse(sample("proc-net-tcp-1.txt"), "tcp", "ipv4")
    listening = [(e.address, e.port) for e in entries if e.listening]
    assert ("10.255.255.254", 53) in listening  # WSL2's DNS tunnel on lo
    assert ("127.0.0.54", 53) in listening  # systemd-resolved
    assert ("127.0.0.1", 5433) in listening
    assert [p.line for p in problems] == [1]  # only the source line


def test_proc_net_tcp6_decodes_any_and_loopback() -> None:
    entries, _ = procnet.parse(sample("proc-net-tcp6-1.txt"), "tcp", "ipv6")
    assert [(e.address, e.port) for e in entries] == [("::", 6379), ("::1", 18789)]
    assert entries[1].uid == 1000


def test_proc_net_udp_unconnected_sockets_count_as_listening() -> None:
    entries, problems = procnet.parse(sample("proc-net-udp-1.txt"), "udp", "ipv4")
    assert ("0.0.0.0", 68) in [(e.address, e.port) for e in entries if e.listening]
    assert len(problems) == 2  # the source line and the pasted `$ cat` prompt


@pytest.mark.parametrize(
    ("name", "listeners"),
    [
        ("proc-net-tcp-3.txt", [("127.0.0.1", 6010), ("127.0.0.53", 53), ("0.0.0.0", 22)]),
        ("proc-net-tcp-5.txt", [("0.0.0.0", 7036), ("0.0.0.0", 7039), ("0.0.0.0", 7041)]),
    ],
)
def test_proc_net_tcp_listeners_of_pasted_hosts(
    name: str, listeners: list[tuple[str, int]]
) -> None:
    entries, _ = procnet.parse(sample(name), "tcp", "ipv4")
    assert [(e.address, e.port) for e in entries if e.listening] == listeners


def test_wsl1_empty_proc_net_tcp_gives_no_sockets_and_no_crash() -> None:
    entries, problems = procnet.parse(sample("proc-net-tcp-wsl1-empty.txt"), "tcp", "ipv4")
    assert entries == []
    assert problems  # the strace lines are reported, not raised


def test_proc_net_broken_lines_are_reported_and_the_rest_kept() -> None:
    good = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1"
    text = "\n".join(
        [
            "  sl  local_address rem_address   st",
            good,
            "   1: ZZZZ:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 2 1",
            "   2: 0100007F:1F",  # truncated
            "\ufffd\ufffd garbage \x00",
            good.replace("1F90", "1F91"),
        ]
    )
    entries, problems = procnet.parse(text, "tcp", "ipv4")
    assert [e.port for e in entries] == [8080, 8081]
    assert [p.line for p in problems] == [3, 4, 5]


def test_proc_net_huge_input_parses() -> None:
    line = "{n}: 0100007F:{p:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 {n} 1"
    text = "\n".join(line.format(n=i, p=i % 65536) for i in range(100_000))
    entries, problems = procnet.parse(text, "tcp", "ipv4")
    assert len(entries) == 100_000 and not problems


def test_proc_net_non_utf8_bytes_in_an_unused_column_keep_the_socket() -> None:
    raw = b"   0: 0100007F:1F90 00000000:0000 0A \xff\xfe 00:00000000 00000000 0 0 1 1\n"
    entries, problems = procnet.parse(raw.decode("utf-8", errors="replace"), "tcp", "ipv4")
    assert [(e.address, e.port) for e in entries] == [("127.0.0.1", 8080)]
    assert problems == []


def test_proc_net_non_utf8_bytes_in_the_address_are_reported() -> None:
    raw = b"   0: 0100\xff\xfe7F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 0 0 0 1 1\n"
    entries, problems = procnet.parse(raw.decode("utf-8", errors="replace"), "tcp", "ipv4")
    assert entries == []
    assert [p.line for p in problems] == [1]


# -- resolv.conf -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "nameservers", "by_wsl"),
    [
        ("resolv-dnstunnel-1.txt", ["10.255.255.254"], True),
        ("resolv-nat-1.txt", ["172.24.16.1"], True),
        ("resolv-nat-4.txt", ["172.19.0.1"], True),
        ("resolv-mirrored-nodnstunnel-1.txt", ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888"], True),
        ("resolv-systemd-resolved-1.txt", ["127.0.0.53"], False),
        ("resolv-systemd-resolved-2.txt", ["127.0.0.53"], False),
        ("resolv-wsl1-1.txt", [], True),
    ],
)
def test_resolv_conf_samples(name: str, nameservers: list[str], by_wsl: bool) -> None:
    conf = resolv.parse(sample(name))
    assert conf.nameservers == nameservers
    assert conf.generated_by_wsl is by_wsl


def test_resolv_conf_reports_bad_lines_without_crashing() -> None:
    conf = resolv.parse("nameserver not-an-ip\nnameserver\nbogus line\nnameserver 198.18.0.1\n")
    assert conf.nameservers == ["198.18.0.1"]
    assert [p.line for p in conf.problems] == [1, 2, 3]


# -- kernel release ----------------------------------------------------------------------
def kernel_samples() -> list[tuple[str, str]]:
    rows = []
    for line in sample("kernel-strings.txt").splitlines():
        if line.startswith("#"):
            continue
        kind, text, _ = line.split("\t")
        rows.append((kind, text))
    return rows


@pytest.mark.parametrize(("kind", "text"), kernel_samples())
def test_kernel_strings_classify_as_their_wsl_version(kind: str, text: str) -> None:
    expected = "wsl2" if "WSL2" in kind else "wsl1"
    if text.startswith("Linux MYHOSTNAME 3.4.0+"):
        expected = "other"  # a 2016 WSL1 uname with no Microsoft marker at all
    assert kernel.classify(text) == expected


def test_plain_linux_kernel_is_not_wsl() -> None:
    assert kernel.classify("6.8.0-45-generic") == "other"


# -- ip rule -----------------------------------------------------------------------------
def test_mirrored_ip_rules_are_recognised_and_nat_ones_are_not() -> None:
    mirrored = route.mirrored_rules(sample("ip-rule-mirrored-1.txt"))
    assert "1:      from all ipproto tcp lookup 127" in mirrored
    assert route.mirrored_rules(sample("ip-rule-nat-1.txt")) == []


def test_proc_net_route_default_gateway() -> None:
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00F0FFFF\t0\t0\t0\n"
        "garbage\n"
    )
    routes, problems = route.parse_proc_route(text)
    assert [r.gateway for r in route.default_gateways(routes)] == ["198.18.0.1"]
    assert [p.line for p in problems] == [4]


def test_the_route_for_an_address_is_the_longest_prefix_and_none_without_one() -> None:
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00F0FFFF\t0\t0\t0\n"
        "docker0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    routes, _ = route.parse_proc_route(text)
    assert route.route_for(routes, "198.18.1.9").interface == "docker0"  # type: ignore[union-attr]
    assert route.route_for(routes, "198.18.5.9").gateway == "0.0.0.0"  # type: ignore[union-attr]
    assert route.route_for(routes, "8.8.8.8").is_default  # type: ignore[union-attr]
    no_default = [r for r in routes if not r.is_default]
    assert route.route_for(no_default, "8.8.8.8") is None
    assert route.route_for(routes, "not an address") is None


# -- .wslconfig and wsl.conf -------------------------------------------------------------
def problems_of(name: str, kind: wslconfig.FileKind = "wslconfig") -> list[str]:
    return [p.why for p in wslconfig.parse(body(name), kind).problems]


def test_clean_wslconfig_has_no_problems() -> None:
    conf = wslconfig.parse(body("wslconfig-11-mirrored-nodnstunnel.ini"))
    assert conf.problems == []
    assert conf.get("wsl2.networkingMode") == "mirrored"
    assert conf.flag("wsl2.dnsTunneling") is False


def test_misspelled_networking_mode_key_suggests_the_real_one() -> None:
    (why,) = problems_of("wslconfig-17a-misspelled-networkMode.ini")
    assert "unknown key wsl2.networkMode" in why and "did you mean wsl2.networkingMode" in why


def test_misspelled_processors_key() -> None:
    (why,) = problems_of("wslconfig-8-misspelled.ini")
    assert "did you mean wsl2.processors" in why


def test_keys_above_any_section_are_ignored_like_wsl_does() -> None:
    whys = problems_of("wslconfig-7-broken-no-section.ini")
    assert len(whys) == 2
    assert all("above any section header" in w and "[wsl2]" in w for w in whys)


def test_experimental_key_in_wsl2_section_is_flagged_with_its_home() -> None:
    whys = problems_of("wslconfig-6-broken-wslconf-sections.ini")
    assert any("hostAddressLoopback" in w and "move it to [experimental]" in w for w in whys)


def test_lowercase_keys_are_accepted() -> None:
    conf = wslconfig.parse(body("wslconfig-18-lowercase-key.ini"))
    assert conf.problems == [] and conf.get("experimental.networkingMode") == "mirrored"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (";networkingMode=mirrored", "';' does not start a comment"),
        ("[wsl2]\nnetworkingMode=mirrored ; note", "is not a networking mode"),
        ("[wsl2]\ndns-tunneling=true", "expected '='"),
        ("[wsl2]\nkernel=C:\\Users\\me\\bzImage", "unknown escape"),
        ("[wsl 2]\nmemory=4GB", "invalid section header"),
        ("[wsl2]\nmemory=4GB\nmemory=8GB", "duplicate key: line 2 wins"),
        ("[wsl2]\nlocalhostForwarding=yes", "is not a boolean"),
        ("[wsl2]\ngenerateHosts=false", "it belongs in /etc/wsl.conf under [network]"),
    ],
)
def test_wsl_parser_rules(text: str, why: str) -> None:
    problems = wslconfig.parse(text).problems
    assert any(why in p.why for p in problems), [p.why for p in problems]


def test_wsl_parser_accepts_comments_quotes_and_escaped_paths() -> None:
    conf = wslconfig.parse(
        '[wsl2]  # main\nmemory=4GB # comment\nkernel="C:\\\\Users\\\\me\\\\bz#Image"\n'
    )
    assert conf.problems == []
    assert conf.get("wsl2.memory") == "4GB"
    assert conf.get("wsl2.kernel") == "C:\\Users\\me\\bz#Image"


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("wslconf*.ini")))
def test_every_config_sample_parses_without_crashing(name: str) -> None:
    kind: wslconfig.FileKind = "wslconf" if name.startswith("wslconf-") else "wslconfig"
    conf = wslconfig.parse(sample(name), kind)
    assert all(p.line > 0 for p in conf.problems)


def test_wsl_conf_docs_sample_reads_every_setting() -> None:
    conf = wslconfig.parse(body("wslconf-6-docs-sample.ini"), "wslconf")
    assert conf.problems == []
    assert conf.get("network.hostname") == "DemoHost"
    assert conf.flag("network.generateResolvConf") is False
    assert conf.get("automount.options") == "metadata,uid=1003,gid=1003,umask=077,fmask=11,case=off"


def test_ip_host_imports_nothing_heavy() -> None:
    """`wslnet ip host` is called from scripts: no scapy, aiohttp or asyncio on its path."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wslnet", "ip", "host"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    imported = imported_modules(res.stderr)
    assert "click" in imported  # the measurement works
    assert not {m for m in imported if m.split(".")[0] in ("scapy", "aiohttp", "asyncio")}


def test_dns_query_is_what_scapy_reads_as_a_query() -> None:
    from scapy.layers.dns import DNS

    from wslnet.probe.dns import answer_code, build_query

    msg = DNS(build_query("wslnet-probe.invalid", 4660))
    assert (msg.id, msg.qr, msg.rd, msg.qdcount) == (4660, 0, 1, 1)
    assert msg.qd[0].qname == b"wslnet-probe.invalid."
    assert answer_code(build_query("x", 1)) is None  # a query is not an answer
    reply = DNS(id=1, qr=1, rcode=3, qd=msg.qd)
    assert answer_code(bytes(reply)) == "NXDOMAIN"


def test_wsl_exe_messages_in_utf16_are_decoded() -> None:
    from wslnet.system import decode_wsl_output

    text = body("win-wsl-l-v-1.txt")  # `wsl -l -v` as a user pasted it
    message = "There is no distribution with the supplied name.\r\n"
    assert decode_wsl_output(message.encode("utf-16-le")) == message
    assert decode_wsl_output("\ufeff".encode("utf-16-le") + b"O\0K\0") == "OK"
    assert decode_wsl_output(b"2: eth0    inet 172.23.14.3/20") == "2: eth0    inet 172.23.14.3/20"
    assert decode_wsl_output(text.encode("utf-16-le")) == text


def test_ip_oneline_output_gives_the_eth0_address() -> None:
    from wslnet.facts.ipaddr import parse_oneline

    out = (
        "2: eth0    inet 172.23.14.3/20 brd 172.23.15.255 scope global eth0\\"
        "       valid_lft forever preferred_lft forever\n"
        "garbage\n"
    )
    addrs, problems = parse_oneline(out)
    assert [(a.interface, a.address, a.prefix) for a in addrs] == [("eth0", "172.23.14.3", 20)]
    assert [p.line for p in problems] == [2]
