"""The forwarder's Windows behaviour in process: errors in Windows' terms (the errno and
the port's owner come through the one seam where Windows programs run), UDP sockets
that ignore WinError 10054, the firewall command a LAN rule needs."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from wslnet import system
from wslnet.errors import ListenError
from wslnet.forward.control import winerrors
from wslnet.forward.core.rules import parse_networks, parse_rule
from wslnet.forward.data import sockopts as udp

SAMPLES = Path(__file__).parent / "samples"
NETSTAT = "  TCP    127.0.0.1:3000   0.0.0.0:0   LISTENING   9876\r\n" \
          "  TCP    127.0.0.1:8080   0.0.0.0:0   LISTENING   4120\r\n"  # fmt: skip
TASKLIST = (
    '"wslrelay.exe","9876","Console","1","8,000 K"\r\n"node.exe","4120","Console","1","9 K"\r\n'
)


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    excluded = (SAMPLES / "win-excludedportrange-1.txt").read_text().split("\n", 1)[1]
    answers = {"netsh.exe": excluded, "netstat.exe": NETSTAT, "tasklist.exe": TASKLIST}

    def windows_exe(name: str, args: list[str], timeout: float = 3.0) -> tuple[int, str, str]:
        return 0, answers[name], ""

    monkeypatch.setattr(system, "windows_exe", windows_exe)


def test_a_reserved_port_is_explained_with_its_range_and_never_root(windows: None) -> None:
    exc = winerrors.explain(ListenError("cannot listen on 127.0.0.1:56700: x", errno.EACCES, 56700))
    assert exc.message.startswith("port 56700 is reserved by Windows (range 56638-56737): ")
    assert "net stop winnat" in exc.message and "sudo" not in exc.message
    assert "root" not in exc.message and exc.exit_code == 2


def test_a_port_the_relay_serves_says_wslnet_is_not_needed(windows: None) -> None:
    exc = winerrors.explain(ListenError("in use", errno.EADDRINUSE, 3000))
    assert exc.message.startswith(
        "WSL's relay already forwards port 3000 (wslrelay.exe, pid 9876): wslnet is not needed"
    )
    other = winerrors.explain(ListenError("in use", errno.EADDRINUSE, 8080))
    assert (
        other.message == "port 8080 is in use by node.exe (pid 4120): stop it or pick another port"
    )


def test_an_unexplained_error_is_kept(windows: None) -> None:
    exc = ListenError("cannot listen: address not available", errno.EADDRNOTAVAIL, 80)
    assert winerrors.explain(exc) is exc


def test_a_lan_rule_gets_the_firewall_command_and_a_loopback_one_none() -> None:
    lan = parse_rule("0.0.0.0:2222=wsl:22", parse_networks(["198.19.0.0/24"], "t"))
    hints = winerrors.firewall_hints([lan, parse_rule("8080")])
    assert hints == [
        ("0.0.0.0:2222=wsl:22",
         'New-NetFirewallRule -DisplayName "wslnet 2222" -Direction Inbound -Protocol TCP -LocalPort 2222 -Action Allow'),
    ]  # fmt: skip


class RecordingSocket:
    def __init__(self) -> None:
        self.calls: list[tuple[int, object]] = []

    def ioctl(self, code: int, value: object) -> None:
        self.calls.append((code, value))


def test_udp_sockets_turn_off_connreset_where_the_platform_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sock = RecordingSocket()
    monkeypatch.setattr(socket, "SIO_UDP_CONNRESET", 0x9800000C, raising=False)
    udp.no_connreset(sock)  # type: ignore[arg-type]
    assert sock.calls == [(0x9800000C, False)]
    monkeypatch.delattr(socket, "SIO_UDP_CONNRESET")
    other = RecordingSocket()
    udp.no_connreset(other)  # type: ignore[arg-type]
    assert other.calls == []  # Linux: nothing to turn off
