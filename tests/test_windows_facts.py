"""Windows tools' output, parsed: the real samples (tests/samples/win-*.txt, copied from
shared/samples with their source lines) and truncated, empty, garbage and translated
input. A parser that cannot read a line reports it; none raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from wslnet.facts import windows as w

SAMPLES = Path(__file__).parent / "samples"


def body(name: str) -> str:
    """A sample without its `# source:` line."""
    return (SAMPLES / name).read_text(encoding="utf-8").split("\n", 1)[1]


def test_excluded_ranges_with_the_administered_mark() -> None:
    found, problems = w.parse_excluded(body("win-excludedportrange-1.txt"))
    assert problems == []
    assert (56638, 56737) in [(r.start, r.end) for r in found]
    assert [r.start for r in found if r.administered] == [55679]
    assert 56700 in found[3] and 56738 not in found[3]


def test_excluded_ranges_for_tcp_and_udp_in_one_paste() -> None:
    found, _ = w.parse_excluded(body("win-excludedportrange-2.txt"))
    assert [(r.proto, r.start) for r in found if r.proto == "udp"] == [
        ("udp", 56030),
        ("udp", 56130),
    ]
    assert len([r for r in found if r.proto == "tcp"]) == 5


def test_excluded_ranges_in_another_language_and_crlf() -> None:
    text = "\r\nProtokoll tcp Portausschlussbereiche\r\n\r\nStartport    Endport\r\n" \
           "----------    --------\r\n     50000       50059     *\r\n\r\n* - Verwaltete\r\n"  # fmt: skip
    found, problems = w.parse_excluded(text)
    assert [(r.proto, r.start, r.end, r.administered) for r in found] == [
        ("tcp", 50000, 50059, True)
    ]
    assert problems == []


def test_a_portproxy_range_rule_to_a_wsl_address() -> None:
    (rule,), problems = w.parse_portproxy(body("win-netsh-portproxy-1.txt"))
    assert problems == []
    assert (rule.kind, rule.listen_address, rule.listen_port) == (
        "v4tov4",
        "0.0.0.0",
        "30000-50000",
    )
    assert rule.connect_address == "172.23.188.236" and rule.covers(40000)


def test_portproxy_show_all_and_the_v6_headings() -> None:
    (rule,), _ = w.parse_portproxy(body("win-netsh-portproxy-2.txt"))
    assert (rule.listen_port, rule.connect_address, rule.connect_low) == (
        "2222",
        "10.4.226.215",
        22,
    )
    text = "Listen on ipv4:             Connect to ipv6:\n\nAddress Port Address Port\n" \
           "------- ---- ------- ----\n*       8080 ::1     8080\n"  # fmt: skip
    (v6,), _ = w.parse_portproxy(text)
    assert (v6.kind, v6.listen_address, v6.connect_address) == ("v4tov6", "*", "::1")


def test_netstat_listeners_whatever_the_state_word() -> None:
    text = (
        "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n"
        "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1044\n"
        "  TCP    127.0.0.1:3000         0.0.0.0:0              ABHÖREN         4120\n"
        "  TCP    127.0.0.1:3000         127.0.0.1:50111        ESTABLISHED     4120\n"
        "  TCP    [::1]:5173             [::]:0                 LISTENING       9876\n"
        "  UDP    0.0.0.0:5353           *:*                                    2332\n"
        "  TCP    garbage\n"
    )
    found, problems = w.parse_netstat(text)
    assert [(s.proto, s.address, s.port, s.pid) for s in found] == [
        ("tcp", "0.0.0.0", 135, 1044),
        ("tcp", "127.0.0.1", 3000, 4120),
        ("tcp", "::1", 5173, 9876),
        ("udp", "0.0.0.0", 5353, 2332),
    ]
    assert [p.line for p in problems] == [10]


def test_tasklist_csv_names_by_pid() -> None:
    text = '"svchost.exe","1044","Services","0","12,345 K"\n"wslrelay.exe","9876","Console","1","8,100 K"\nbroken\n'
    names, problems = w.parse_tasklist_csv(text)
    assert names == {1044: "svchost.exe", 9876: "wslrelay.exe"}
    assert [p.line for p in problems] == [3]


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("win-wsl-l-v-1.txt", [("Ubuntu", "Running", 1, True), ("Ubuntu-20.04", "Running", 2, False)]),
        ("win-wsl-l-v-2.txt", [("docker-desktop-data", "Running", 2, True),
                               ("docker-desktop", "Running", 2, False),
                               ("Ubuntu-20.04", "Running", 2, False)]),
    ],
)  # fmt: skip
def test_wsl_list_verbose(name: str, expect: list[tuple[str, str, int, bool]]) -> None:
    found, problems = w.parse_wsl_list(body(name))
    assert [(d.name, d.state, d.version, d.default) for d in found] == expect
    assert problems == []


def test_wsl_list_from_utf16_with_nuls_left_in_and_a_stopped_distro() -> None:
    text = "  NAME      STATE           VERSION\r\n* Debian    Stopped         2\r\n".encode(
        "utf-16-le"
    ).decode("latin-1")  # what a naive decoder leaves: a NUL after every character
    found, _ = w.parse_wsl_list(text)
    assert [(d.name, d.running) for d in found] == [("Debian", False)]


@pytest.mark.parametrize(
    ("name", "wsl", "kernel", "windows"),
    [
        ("win-wsl-version-1.txt", "1.1.2.0", "5.15.83.1", "10.0.19045.2546"),
        ("win-wsl-version-2.txt", "0.68.4.0", "5.15.68.1", "10.0.22000.978"),
        ("win-wsl-version-3.txt", "1.2.5.0", "5.15.90.1", "10.0.19045.3393"),
        ("win-wsl-version-4.txt", "2.0.9.0", "5.15.133.1-1", "10.0.22631.2715"),
        ("win-wsl-version-5.txt", "2.4.13.0", "5.15.167.4-1", "10.0.22631.5335"),
        ("win-wsl-version-6.txt", "1.2.5.0", "5.15.90.1", "10.0.22621.1702"),
    ],
)
def test_wsl_version_samples(name: str, wsl: str, kernel: str, windows: str) -> None:
    v = w.parse_wsl_version(body(name))
    assert (v.wsl, v.kernel, v.windows) == (wsl, kernel, windows)


def test_powershell_json_one_object_or_many_and_enums_as_numbers() -> None:
    one, _ = w.parse_ps_json(
        '{"Name":"{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}","DefaultInboundAction":4}'
    )
    assert w.firewall_action(one[0]["DefaultInboundAction"]) == "Block"
    many, _ = w.parse_ps_json('\ufeff[{"DefaultInboundAction":"Allow"},{"a":1}]')
    assert w.firewall_action(many[0]["DefaultInboundAction"]) == "Allow" and len(many) == 2


@pytest.mark.parametrize("text", ["", "\x00\x00\xff", "Ok.\n", "-" * 5000, "1 2 3 4 5\n" * 3])
def test_garbage_never_raises(text: str) -> None:
    w.parse_excluded(text)
    w.parse_portproxy(text)
    w.parse_netstat(text)
    w.parse_tasklist_csv(text)
    w.parse_wsl_list(text)
    w.parse_wsl_version(text)
    objects, problems = w.parse_ps_json(text)
    assert objects == [] or problems == []


def test_truncated_powershell_json_is_a_problem_not_a_crash() -> None:
    objects, problems = w.parse_ps_json('[{"LocalPort": 3000, "Own')
    assert objects == [] and problems and problems[0].why.startswith("not JSON")


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("win-*.txt")))
def test_every_windows_sample_goes_through_every_parser_without_raising(name: str) -> None:
    text = body(name)
    for parse in (w.parse_excluded, w.parse_portproxy, w.parse_netstat, w.parse_wsl_list):
        found, problems = parse(text)
        assert isinstance(found, list) and isinstance(problems, list)
    w.parse_tasklist_csv(text)
    w.parse_wsl_version(text)
    w.parse_ps_json(text)


def test_samples_of_other_tools_are_not_mistaken_for_the_tools_wslnet_reads() -> None:
    ipconfig = body("win-ipconfig-vethernet-wsl-2-ja.txt")
    assert w.parse_portproxy(ipconfig)[0] == [] and w.parse_wsl_list(ipconfig)[0] == []
    status = body("win-wsl-status-3.txt")  # "Default Version: 2" is not a version number
    assert w.parse_wsl_version(status).wsl is None
