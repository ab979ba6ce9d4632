"""The forwarder's Windows behaviour in process: errors in Windows' terms (the errno and
the port's owner come through the one seam where Windows programs run), listening UDP
sockets that ignore WinError 10054 (WSAIoctl, through its seam), the firewall command a
LAN rule needs."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from wslnet import system
from wslnet.errors import ListenError
from wslnet.forward.control import winerrors
from wslnet.forward.control.auto import AutoForward
from wslnet.forward.core.config import AutoConfig
from wslnet.forward.core.listen import bind_listener
from wslnet.forward.core.rules import Endpoint, parse_networks, parse_rule
from wslnet.forward.core.udp import open_target
from wslnet.forward.data import sockopts

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


class RecordingWsaIoctl:
    """ws2_32's WSAIoctl as the seam sees it: the arguments of each call, and its answer."""

    def __init__(self, answer: int = 0) -> None:
        self.answer = answer
        self.calls: list[tuple[int, int, int, int]] = []  # (socket, code, in-value, in-size)

    def __call__(self, sock: int, code: int, inbuf: Any, insize: int, *rest: Any) -> int:
        value = ctypes.cast(inbuf, ctypes.POINTER(ctypes.c_uint32)).contents.value
        self.calls.append((sock, code, value, insize))
        assert rest[:2] == (None, 0) and rest[3:] == (None, None)  # no output, not overlapped
        return self.answer


def test_listening_udp_sockets_turn_off_connreset_through_wsaioctl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CPython's socket.ioctl refuses SIO_UDP_CONNRESET: it must go through WSAIoctl."""
    wsaioctl = RecordingWsaIoctl()
    monkeypatch.setattr(sockopts, "wsa_ioctl", wsaioctl)
    sock = bind_listener(Endpoint("127.0.0.1", 0), socket.SOCK_DGRAM)
    assert wsaioctl.calls == [(sock.fileno(), 0x9800000C, 0, 4)]  # FALSE: do not report
    sock.close()


def test_a_refused_wsaioctl_is_an_error_not_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sockopts, "wsa_ioctl", RecordingWsaIoctl(answer=-1))
    with pytest.raises(ListenError, match="WSAIoctl"):
        bind_listener(Endpoint("127.0.0.1", 0), socket.SOCK_DGRAM).close()


async def test_a_sessions_socket_keeps_hearing_the_target_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Towards a target, port unreachable is how a session learns it ended."""
    wsaioctl = RecordingWsaIoctl()
    monkeypatch.setattr(sockopts, "wsa_ioctl", wsaioctl)
    loop = asyncio.get_running_loop()
    port = open_target(loop, (socket.AF_INET, ("127.0.0.1", 9)), lambda *_: None, lambda _: None)
    assert wsaioctl.calls == []
    port.close()


@pytest.mark.windows  # WSAIoctl itself: the Windows CI job
def test_connreset_is_really_off_on_windows() -> None:
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone.bind(("127.0.0.1", 0))
    gone_addr = gone.getsockname()
    gone.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sockopts.no_connreset(sock)
    sock.sendto(b"to nobody", gone_addr)
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):  # not ConnectionResetError (WinError 10054)
        sock.recvfrom(100)
    sock.close()


class Started(Exception):
    """Raised by the recording stand-in of a child's start, with its keyword arguments."""


CREATE_NO_WINDOW = 0x08000000  # winbase.h


@pytest.mark.parametrize("has_flag", [True, False], ids=["windows", "elsewhere"])
async def test_every_child_starts_without_a_window_where_the_platform_has_the_flag(
    monkeypatch: pytest.MonkeyPatch, has_flag: bool
) -> None:
    """Under pythonw a console child flashes a window, and --auto's wsl.exe keeps one
    open. The seam: subprocess.CREATE_NO_WINDOW, which only Windows' subprocess has."""
    if has_flag:
        monkeypatch.setattr(subprocess, "CREATE_NO_WINDOW", CREATE_NO_WINDOW, raising=False)
    else:
        monkeypatch.delattr(subprocess, "CREATE_NO_WINDOW", raising=False)
    want = CREATE_NO_WINDOW if has_flag else 0
    seen: list[dict[str, Any]] = []

    def record(*_: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        raise Started

    monkeypatch.setattr(shutil, "which", lambda name: f"/fake/{name}")
    monkeypatch.setattr(subprocess, "run", record)
    with pytest.raises(Started):  # wsl.exe, netsh, netstat, tasklist, powershell, schtasks
        system.execute(["netsh.exe", "interface", "portproxy", "show", "all"], 1.0)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", record)
    with pytest.raises(Started):
        await AutoForward(None, None, AutoConfig(), None).run()  # type: ignore[arg-type]
    assert [kw.get("creationflags") for kw in seen] == [want, want]
