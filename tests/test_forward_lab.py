"""`wslnet forward` in the simulated Windows/WSL/LAN network (tests/lab.py)."""

from __future__ import annotations

import time

import pytest

from tests.helpers import (
    ServerThread,
    assert_closed_on_connect,
    echo,
    forwarder,
    listening_socket,
    ping,
)
from tests.lab import LAN_IP, WIN_LAN_IP, WSL_IP, Lab

pytestmark = pytest.mark.lab


def wsl_echo(lab: Lab, servers: ServerThread) -> int:
    with lab.inside(lab.wsl):
        sock = listening_socket(WSL_IP)
    return servers.serve(echo, sock)


def test_windows_localhost_reaches_the_wsl_server(lab: Lab, servers: ServerThread) -> None:
    port = wsl_echo(lab, servers)
    with forwarder(f"0={WSL_IP}:{port}", prefix=lab.prefix(lab.win)) as fwd:
        assert ping(lab.socket(lab.win), "127.0.0.1", fwd.port) == b"ping"
        end = fwd.wait_event("conn")[0]
        assert end["target"] == f"{WSL_IP}:{port}" and end["reason"] == "closed"


def test_lan_cannot_reach_a_loopback_rule_but_can_reach_a_lan_rule(
    lab: Lab, servers: ServerThread
) -> None:
    port = wsl_echo(lab, servers)
    rules = (f"127.0.0.1:0={WSL_IP}:{port}", f"{WIN_LAN_IP}:0={WSL_IP}:{port}")
    with forwarder(*rules, "--allow", "198.19.0.0/24", prefix=lab.prefix(lab.win)) as fwd:
        loopback_port, lan_port = fwd.ports
        with pytest.raises(ConnectionRefusedError):
            ping(lab.socket(lab.lan), WIN_LAN_IP, loopback_port)
        assert ping(lab.socket(lab.lan), WIN_LAN_IP, lan_port) == b"ping"
        end = fwd.wait_event("conn")[0]
        assert str(end["client"]).startswith(f"{LAN_IP}:")


@pytest.mark.parametrize(
    ("nft_rule", "reason"),
    [
        ("tcp dport {port} drop", "connect-timeout"),
        ("tcp dport {port} reject with icmp type host-unreachable", "connect-unreachable"),
        ("tcp dport {port} reject with tcp reset", "connect-refused"),
    ],
)
def test_unreachable_target_closes_the_client_within_the_connect_timeout(
    lab: Lab, servers: ServerThread, nft_rule: str, reason: str
) -> None:
    port = wsl_echo(lab, servers)
    lab.firewall(lab.wsl, nft_rule.format(port=port))
    try:
        with forwarder(
            f"0={WSL_IP}:{port}", "--connect-timeout", "1", prefix=lab.prefix(lab.win)
        ) as fwd:
            t0 = time.monotonic()
            assert_closed_on_connect(lab.socket(lab.win), "127.0.0.1", fwd.port)
            assert time.monotonic() - t0 < 2.5
            end = fwd.wait_event("conn")[0]
            assert end["reason"] == reason
            # ... and the forwarder keeps serving once the path is open again.
            lab.flush_firewall(lab.wsl)
            assert ping(lab.socket(lab.win), "127.0.0.1", fwd.port) == b"ping"
    finally:
        lab.flush_firewall(lab.wsl)
