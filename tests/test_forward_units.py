"""The forwarder's pure parts in process: the config file reader, auto-forward's port
selection, the status snapshot and its Prometheus text, the relay's ending rules, and
usage errors of `wslnet forward` that end before anything listens."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from wslnet.cli import cli
from wslnet.errors import UsageError
from wslnet.facts import procnet
from wslnet.forward.control import configfile
from wslnet.forward.control.auto import AutoForward, wanted
from wslnet.forward.control.status import RuleStatus, Status, UdpStatus, metrics, render
from wslnet.forward.core.config import AutoConfig, PortRange, parse_ports
from wslnet.forward.core.listen import HeldByProgram, HeldByRule, Holder, in_use, overlaps
from wslnet.forward.core.rules import Endpoint, parse_networks
from wslnet.forward.data.ends import End
from wslnet.forward.data.relay import Ending
from wslnet.forward.run import target_down


# -- the config file ---------------------------------------------------------------------
def load(tmp_path: Path, text: str) -> configfile.FileConfig:
    path = tmp_path / "forward.toml"
    path.write_text(text)
    return configfile.load(path)


def test_config_file_settings_and_rules(tmp_path: Path) -> None:
    conf = load(
        tmp_path,
        "connect_timeout = 2\nallow_any = false\n"
        '[[forward]]\nlisten = "8080"\ntarget = "wsl:3000"\n'
        '[[forward]]\nlisten = "0.0.0.0:5353"\nproto = "udp"\nallow = ["198.19.0.0/24"]\n',
    )
    assert conf.settings == {"connect_timeout": 2, "allow_any": False}
    tcp, udp = conf.rules
    assert (tcp.proto, tcp.listen.port, tcp.target) == ("tcp", 8080, Endpoint("wsl", 3000))
    assert (udp.proto, udp.target) == ("udp", Endpoint("wsl", 5353))
    assert udp.allow == (ipaddress.ip_network("198.19.0.0/24"),)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[forward]]\nlisten = "99999"\n', "[[forward]] #1: field 'listen': listen port 99999"),
        ('[[forward]]\nlisten = "80"\ntarget = "x:0"\n', "field 'target': target port 0"),
        ('[[forward]]\nlisten = "80"\nproto = "sctp"\n', "field 'proto': 'sctp' is neither"),
        ('[[forward]]\nlisten = "80"\nallow = [1]\n', "field 'allow': 1 is not a network"),
        ('[[forward]]\nlisten = "80"\nallow = "x"\n', "field 'allow' must be a list"),
        ('[[forward]]\ntarget = "80"\n', "field 'listen' is missing"),
        ('[[forward]]\nlisten = "80"\nport = 1\n', "unknown field 'port'"),
        ('[forward]\nlisten = "80"\n', "write [[forward]], not [forward]"),
        ("drain = true\n", "setting 'drain' has the wrong type"),
        ("dran = 1\n", "unknown setting 'dran'"),
        ("listen = \n", "not valid TOML"),
    ],
)
def test_config_file_errors_name_the_table_and_field(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(UsageError) as info:
        load(tmp_path, text)
    assert error in info.value.message
    assert info.value.message.startswith(str(tmp_path / "forward.toml"))


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "forward.toml"
    path.write_bytes(b"drain = 1 # \xff\xfe\n")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        configfile.load(path)


# -- auto-forward's choice of ports ------------------------------------------------------
def sock(proto: str, address: str, port: int, listening: bool = True) -> procnet.SocketEntry:
    family = "ipv6" if ":" in address else "ipv4"
    state = procnet.UDP_UNCONNECTED
    if proto == "tcp":
        state = procnet.TCP_LISTEN if listening else 1  # 1: an established client socket
    return procnet.SocketEntry(proto, family, address, port, "0.0.0.0", 0, state, 0, 1)  # type: ignore[arg-type]


def test_auto_forwards_what_the_relay_misses_and_lan_adds_any_address_tcp() -> None:
    entries = [
        sock("tcp", "0.0.0.0", 3000),  # the relay forwards it
        sock("tcp", "127.0.0.1", 3001),  # so this one
        sock("tcp", "198.18.5.20", 8000),  # bound to eth0: the relay skips it
        sock("tcp", "198.18.5.20", 8001, listening=False),  # a client socket
        sock("udp", "0.0.0.0", 5353),  # UDP is never relayed
        sock("udp", "127.0.0.1", 5354),  # loopback-only UDP: Windows cannot reach it anyway
    ]
    vm = {"198.18.5.20"}
    assert wanted(entries, vm, lan=False) == {("tcp", 8000), ("udp", 5353)}
    assert wanted(entries, vm, lan=True) == {("tcp", 3000), ("tcp", 8000), ("udp", 5353)}


def test_include_and_exclude_ranges() -> None:
    auto = AutoConfig(include=parse_ports("3000-3999,22", "--include"),
                      exclude=parse_ports("3500", "--exclude"))  # fmt: skip
    assert auto.include == (PortRange(3000, 3999), PortRange(22, 22))
    assert [p for p in (22, 2999, 3000, 3500, 3999, 4000) if auto.keeps(p)] == [22, 3000, 3999]
    assert AutoConfig().keeps(1)


@pytest.mark.parametrize("text", ["a-b", "0", "9-3", "70000", "٨٠٨٠", "1-", "3000-"])
def test_bad_port_ranges_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--include"):
        parse_ports(text, "--include")


def test_a_snapshot_is_parsed_file_by_file() -> None:
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
    line = "   0: 1405120A:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1"
    entries = procnet.parse_snapshot({"tcp": [header, line], "bogus": ["x"]})
    assert [(e.address, e.port) for e in entries] == [("10.18.5.20", 8000)]


def test_auto_rules_listen_on_loopback_or_the_lan_and_target_the_distro() -> None:
    allow = parse_networks(["198.19.0.0/24"], "--allow")
    lan = AutoForward(None, None, AutoConfig(lan=True, distro="Debian"), allow)  # type: ignore[arg-type]
    rule = lan.rule("udp", 5353)
    assert (str(rule), rule.allow) == ("udp/0.0.0.0:5353=wsl@Debian:5353", allow)
    local = AutoForward(None, None, AutoConfig(), None)  # type: ignore[arg-type]
    assert str(local.rule("tcp", 8000)) == "tcp/localhost:8000=wsl:8000"


# -- status and metrics ------------------------------------------------------------------
RULES = [
    RuleStatus(
        id=1, proto="tcp", rule="8080", origin="cli", listen=["127.0.0.1:8080", "[::1]:8080"],
        target="wsl:8080", resolved=["198.18.5.20:8080"], resolved_at=1.0, allow=None,
        closing=False, connections_active=2, connections_total=10, rejected=1, denied=0,
        bytes_up=100, bytes_down=2000, errors={"connect-refused": 3},
    ),
    RuleStatus(
        id=2, proto="udp", rule="udp/5353", origin="auto", listen=["udp/127.0.0.1:5353"],
        target='we"ird', resolved=[], resolved_at=None, allow=["198.19.0.0/24"], closing=False,
        connections_active=1, connections_total=4, rejected=0, denied=5, bytes_up=7,
        bytes_down=9, errors={}, udp=UdpStatus(60.0, 1, 4, 3),
    ),
]  # fmt: skip
STATUS = Status(started=0.0, uptime=12.0, engine="splice", config=None, rules=RULES)


def test_prometheus_text_has_every_series_per_rule() -> None:
    lines = metrics(STATUS).splitlines()
    tcp = 'rule="1",proto="tcp",listen="127.0.0.1:8080",target="wsl:8080"'
    udp = 'rule="2",proto="udp",listen="udp/127.0.0.1:5353",target="we\\"ird"'
    for line in [
        "# TYPE wslnet_connections_total counter",
        f"wslnet_connections_total{{{tcp}}} 10",
        f"wslnet_connections_active{{{udp}}} 1",
        f'wslnet_bytes_total{{{tcp},direction="down"}} 2000',
        f'wslnet_errors_total{{{tcp},reason="connect-refused"}} 3',
        f"wslnet_rejected_total{{{udp}}} 5",
        f"wslnet_udp_dropped_total{{{udp}}} 3",
    ]:
        assert line in lines
    assert not [line for line in lines if line.startswith(f"wslnet_udp_dropped_total{{{tcp}")]
    assert metrics(STATUS).endswith("\n")


def test_status_json_keeps_udp_fields_for_udp_rules_only() -> None:
    tcp, udp = (r.as_json() for r in RULES)
    assert "udp_timeout" not in tcp and "udp" not in tcp
    udp_fields = ("udp_timeout", "udp_sessions_active", "udp_sessions_total")
    assert [udp[k] for k in (*udp_fields, "udp_datagrams_dropped")] == [60.0, 1, 4, 3]
    assert STATUS.as_json()["schema"] == 1


def test_status_for_people_is_one_line_per_rule() -> None:
    assert render(STATUS.as_json()).splitlines() == [
        "wslnet forward, up 12 s, engine splice",
        "  #1 tcp 127.0.0.1:8080 [::1]:8080 -> wsl:8080 (198.18.5.20:8080) active 2 total 10 "
        "up 100 down 2000",
        '  #2 udp udp/127.0.0.1:5353 -> we"ird (-) active 1 total 4 up 7 down 9 dropped 3',
    ]


# -- the ending rules every relay engine shares ------------------------------------------
def test_both_eofs_close_and_the_first_reason_wins_once() -> None:
    heard: list[End] = []
    ending = Ending(heard.append)
    assert ending.eof("client") is False  # half-closed: the other direction goes on
    assert ending.eof("target") is True
    ending.claim(End("client-reset"))  # too late: the connection already closed cleanly
    ending.finish()
    ending.finish()
    assert [str(end) for end in heard] == ["closed"]


def test_an_error_before_both_eofs_is_the_reason() -> None:
    heard: list[End] = []
    ending = Ending(heard.append)
    ending.eof("client")
    assert ending.claim(End("target-reset")) == End("target-reset")
    assert ending.claim(End("idle-timeout")) == End("target-reset")
    ending.finish()
    assert [str(end) for end in heard] == ["target-reset"]


# -- usage errors before anything listens ------------------------------------------------
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--include", "3000"], "wslnet: --include goes with --auto"),
        (["8080", "--connect-timeout", "nan"], "wslnet: --connect-timeout must be a number"),
        (["8080", "--api", "udp/0"], "wslnet: --api 'udp/0': expected [HOST:]PORT"),
        (["8080", "--allow", "1.2.3.x"], "wslnet: --allow: '1.2.3.x' is not a network"),
        (["٨٠٨٠"], "wslnet: bad rule '٨٠٨٠': listen port '٨٠٨٠' is not a number"),
        (["--auto", "--lan"], "wslnet: --auto --lan exposes ports to the LAN"),
        (["8080", "--api", ""], "wslnet: --api '': expected [HOST:]PORT"),
        (["8080", "--udp-timeout", "inf"], "wslnet: --udp-timeout must be a number"),
    ],
)
def test_forward_usage_errors_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    res = CliRunner().invoke(cli, ["forward", *args])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith(line)


@pytest.mark.parametrize(
    ("option", "line"),
    [
        ("--udp-max-sessions", "wslnet: --udp-max-sessions must be at least 1"),
        ("--udp-timeout", "wslnet: --udp-timeout must be more than 0 seconds"),
        ("--resolve-interval", "wslnet: --resolve-interval must be more than 0 seconds"),
    ],
)
def test_each_limit_of_forward_says_its_own_name(option: str, line: str) -> None:
    res = CliRunner().invoke(cli, ["forward", "8080", option, "0"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == line


def test_a_bad_config_file_stops_forward_before_it_listens(tmp_path: Path) -> None:
    path = tmp_path / "forward.toml"
    path.write_text('[[forward]]\nlisten = "http"\n')
    res = CliRunner().invoke(cli, ["forward", "--config", str(path)])
    assert res.exit_code == 2
    assert "field 'listen': listen port 'http' is not a number" in res.output


def test_status_takes_the_api_address_as_forward_does() -> None:
    res = CliRunner().invoke(cli, ["status", "--api", "notaurl"])
    assert res.exit_code == 2
    assert res.output.strip() == "wslnet: --api 'notaurl': expected [HOST:]PORT such as 7070"


@pytest.mark.parametrize("command", [["check", "--no-raw"], ["probe", "syn", "h", "1"]])
def test_probe_timeouts_must_be_finite(command: list[str]) -> None:
    res = CliRunner().invoke(cli, [*command, "--timeout", "nan"])
    assert res.exit_code == 2
    assert "'nan' is not a number of seconds" in res.output


def test_dashboard_when_the_forwarder_has_exited_says_so(tmp_path: Path) -> None:
    import json
    import subprocess

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state = tmp_path / "wslnet"
    state.mkdir()
    doc = {"url": "http://127.0.0.1:9", "token_file": None, "pid": gone.pid}
    (state / "api.json").write_text(json.dumps(doc))
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "WSLNET_API_TOKEN": ""}
    res = CliRunner().invoke(cli, ["dashboard", "--no-browser"], env=env)
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"wslnet: no forwarder is running: the last one with --api (pid {gone.pid}) has exited"
    )
    (state / "api.json").unlink()
    res = CliRunner().invoke(cli, ["dashboard", "--no-browser"], env=env)
    assert res.exit_code == 1
    assert res.output.startswith("wslnet: no forwarder with --api has run here")


def all_options() -> list[tuple[str, click.Option]]:
    found = []

    def walk(command: click.Command, path: str) -> None:
        for p in command.params:
            if isinstance(p, click.Option):
                found.append((f"{path} {p.opts[-1]}", p))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(cli, "wslnet")
    return found


def test_every_option_has_help_and_no_noise_defaults() -> None:
    missing = [name for name, opt in all_options() if not opt.help and not opt.hidden]
    assert missing == []
    for command in ("forward", "check", "probe syn", "status", "listeners"):
        res = CliRunner().invoke(cli, [*command.split(), "--help"])
        assert res.exit_code == 0
        assert "[default: 0]" not in res.output and "[default: False]" not in res.output


@pytest.mark.parametrize("args", [["8080"], ["--auto"], ["9000=wsl@Debian:9000"]])
def test_without_wsl_exe_a_wsl_target_or_auto_fails_at_start(
    args: list[str], tmp_path: Path
) -> None:
    res = CliRunner().invoke(cli, ["forward", *args], env={"PATH": str(tmp_path)})
    assert res.exit_code == 2
    assert res.output.startswith("wslnet: wsl.exe is not here, and the wsl target (or --auto)")


# -- a run's signal handlers ---------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP and the loop's handlers are POSIX")
async def test_a_run_puts_back_the_signal_handlers_it_found() -> None:
    import signal

    from wslnet.forward.run import capture_signals

    class Fwd:
        stops = 0

        def request_stop(self) -> None:
            self.stops += 1

    def mine(*_: object) -> None:
        pass

    watched = [signal.SIGINT]
    if sys.platform != "win32":
        watched.append(signal.SIGHUP)
    before = {sig: signal.getsignal(sig) for sig in watched}
    signal.signal(signal.SIGTERM, mine)
    fwd = Fwd()
    try:
        with capture_signals(fwd, None) as stopped:  # type: ignore[arg-type]
            assert signal.getsignal(signal.SIGTERM) is not mine
            signal.raise_signal(signal.SIGTERM)
            for _ in range(100):  # the loop runs the handler on a later turn
                if fwd.stops:
                    break
                await asyncio.sleep(0.01)
            assert fwd.stops == 1 and not stopped.is_set()
        assert stopped.is_set()  # a Windows console handler waits on it
        assert signal.getsignal(signal.SIGTERM) is mine
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


async def test_a_name_keeps_its_ipv6_sockaddr_whole_for_connectex() -> None:
    """ConnectEx reads a 2-tuple as IPv4 (Modules/overlapped.c parse_address): a name's
    IPv6 addresses must keep getaddrinfo's 4-tuple, here and from the cache."""
    from wslnet.forward.core.resolve import Resolver

    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign,assignment]
    resolver = Resolver(loop)
    want = [(socket.AF_INET6, ("::1", 8080, 0, 0)), (socket.AF_INET, ("127.0.0.1", 8080))]
    assert await resolver.resolve(Endpoint("dual.example", 8080)) == want
    assert resolver.cached(Endpoint("dual.example", 9090)) == [
        (socket.AF_INET6, ("::1", 9090, 0, 0)),
        (socket.AF_INET, ("127.0.0.1", 9090)),
    ]
    assert resolver.cached(Endpoint("::1", 7)) == [(socket.AF_INET6, ("::1", 7, 0, 0))]


@pytest.mark.parametrize(
    ("end", "line"),
    [
        (End("connect-refused"), "target 127.0.0.1:9 refuses connections now; forwarding anyway"),
        (End("connect-unreachable"), "target 127.0.0.1:9 is unreachable now; forwarding anyway"),
        (
            End("connect-timeout"),
            "target 127.0.0.1:9 does not answer now (no reply in 3 s); forwarding anyway",
        ),
        (
            End("connect-error", "Permission denied"),
            "target 127.0.0.1:9 cannot be reached now (Permission denied); forwarding anyway",
        ),
    ],
)
def test_a_target_down_at_start_is_one_line_that_says_forwarding_goes_on(
    end: End, line: str
) -> None:
    assert target_down("127.0.0.1:9", end) == line


@pytest.mark.parametrize(
    ("held", "cause"),
    [
        (
            HeldByRule(1, "9595=localhost:8000"),
            "rule 1 (9595=localhost:8000) already listens there",
        ),
        (
            HeldByProgram("nginx\x1b[2J", 42),
            "address already in use: nginx\\x1b[2J (pid 42) listens there; "
            "stop it or pick another port",
        ),
        (
            None,
            "address already in use: another program listens there; stop it or pick another port",
        ),
    ],
)
def test_a_port_in_use_names_who_holds_it_where_known(held: Holder, cause: str) -> None:
    assert in_use(held) == cause


@pytest.mark.parametrize(
    ("bound", "want", "overlap"),
    [("127.0.0.1", "127.0.0.1", True), ("0.0.0.0", "127.0.0.1", True), ("::", "127.0.0.1", False),
     ("::1", "::", True), ("127.0.0.2", "127.0.0.1", False)],
)  # fmt: skip
def test_a_wildcard_listener_takes_the_port_on_every_address_of_its_family(
    bound: str, want: str, overlap: bool
) -> None:
    assert overlaps(bound, want) is overlap
