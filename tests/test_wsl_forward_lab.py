"""The WSL forwarder in the lab: `wsl` targets through a fake wsl.exe that answers from
the `wsl` namespace, a VM that changes address, UDP, auto-forward, config reload, access
control and the control API."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import (
    ForwarderProcess,
    ServerThread,
    assert_closed_on_connect,
    assert_schema,
    echo,
    forwarder,
    listening_socket,
    ping,
)
from tests.lab import LAN_IP, WIN_LAN_IP, WSL_IP, Lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fake_wsl(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return lab.fake_wsl_exe(tmp_path_factory.mktemp("fakebin"))


def wsl_server(lab: Lab, servers: ServerThread, host: str = "0.0.0.0") -> int:
    with lab.inside(lab.wsl):
        sock = listening_socket(host)
    return servers.serve(echo, sock)


def ping_from(lab: Lab, ns: str, host: str, port: int, family: int = socket.AF_INET) -> bytes:
    return ping(lab.socket(ns, family), host, port)


def test_both_loopback_families_reach_the_vm_through_wsl_exe(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    port = wsl_server(lab, servers)
    with forwarder(f"0={port}", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        assert ping_from(lab, lab.win, "127.0.0.1", fwd.port) == b"ping"
        assert ping_from(lab, lab.win, "::1", fwd.port, socket.AF_INET6) == b"ping"
        ends = fwd.wait_event("conn", count=2)
        assert {e["target"] for e in ends} == {f"{WSL_IP}:{port}"}


def readdress(lab: Lab, address: str) -> None:
    """What a VM restart does to WSL: eth0 gets another address."""
    lab.sh(
        lab.wsl,
        f"ip addr flush dev eth0 && ip addr add {address}/20 dev eth0"
        " && ip route replace default via 198.18.0.1",
    )


def test_new_connections_follow_the_vm_to_its_new_address(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    port = wsl_server(lab, servers)
    moved = "198.18.5.21"
    args = (f"0={port}", "--resolve-interval", "0.5", "--connect-timeout", "1")
    with forwarder(*args, prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        assert ping_from(lab, lab.win, "127.0.0.1", fwd.port) == b"ping"
        readdress(lab, moved)
        try:
            time.sleep(1.0)  # the cached address expires after --resolve-interval (0.5 s)
            assert ping_from(lab, lab.win, "127.0.0.1", fwd.port) == b"ping"
            ends = fwd.wait_event("conn", count=2)
            assert ends[1]["target"] == f"{moved}:{port}"
            move = fwd.wait_event("target-moved")[0]
            assert (move["old"], move["new"]) == (WSL_IP, moved)
        finally:
            readdress(lab, WSL_IP)


def refused_with(lab: Lab, fwd: ForwarderProcess) -> str:
    """A client from Windows is closed at once; the reason the forwarder logged."""
    assert_closed_on_connect(lab.socket(lab.win), "127.0.0.1", fwd.port)
    return str(fwd.wait_event("conn")[0]["reason"])


def test_an_unknown_distro_is_a_clear_connect_error(lab: Lab, fake_wsl: dict[str, str]) -> None:
    with forwarder("0=wsl@NoSuch:80", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        assert refused_with(lab, fwd) == (
            "connect-dns: wsl@NoSuch: There is no distribution with the supplied name."
        )


def payload(client: int, seq: int) -> bytes:
    return b"%d:%d:" % (client, seq) + b"x" * (client * 100)


def test_udp_echo_with_50_interleaved_clients(lab: Lab, fake_wsl: dict[str, str]) -> None:
    with lab.inside(lab.wsl):
        srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", 0))
    srv.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE: no drops in a burst
    srv.settimeout(10)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = srv.recvfrom(65535)
            except OSError:
                return
            srv.sendto(data, peer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        args = (f"udp/0={port}", "--udp-timeout", "0.5")
        with forwarder(*args, prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
            clients = []
            for _ in range(50):
                with lab.inside(lab.win):
                    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                c.settimeout(5)
                clients.append(c)
            for seq in range(10):
                # Each round all 50 send before any reads: their datagrams interleave.
                for i, c in enumerate(clients):
                    c.sendto(payload(i, seq), ("127.0.0.1", fwd.port))
                for i, c in enumerate(clients):
                    assert c.recv(65535) == payload(i, seq)
            names = {f"127.0.0.1:{c.getsockname()[1]}" for c in clients}
            for c in clients:
                c.close()
            # One session per client, each with all ten datagrams each way, ended by idling.
            sessions = fwd.wait_event("udp-session", count=50)
            assert {s["client"] for s in sessions} == names
            assert {(s["datagrams_up"], s["datagrams_down"]) for s in sessions} == {(10, 10)}
            assert {s["reason"] for s in sessions} == {"idle-timeout"}
    finally:
        stop.set()
        srv.close()


def test_auto_forward_follows_listeners_as_they_come_and_go(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    with lab.inside(lab.wsl):
        probe = listening_socket(WSL_IP)
    port = probe.getsockname()[1]
    probe.close()
    with forwarder(
        "--auto", "--include", f"{port}", prefix=lab.prefix(lab.win), env=fake_wsl
    ) as fwd:
        with lab.inside(lab.wsl):
            sock = listening_socket(WSL_IP, port)  # bound to eth0: WSL's relay skips it
        servers.serve(echo, sock)
        t0 = time.monotonic()
        fwd.wait_event("auto-add", port=port, timeout=5)
        assert time.monotonic() - t0 < 1.5
        assert ping_from(lab, lab.win, "127.0.0.1", port) == b"ping"
        servers.stop_serving()
        sock.close()
        fwd.wait_event("auto-remove", port=port, timeout=5)  # logged once it stopped listening
        with pytest.raises(ConnectionRefusedError):
            ping_from(lab, lab.win, "127.0.0.1", port)


def write_config(path: Path, *rules: tuple[str, str]) -> None:
    text = "connect_timeout = 2\n" + "".join(
        f'[[forward]]\nlisten = "{listen}"\ntarget = "{target}"\n' for listen, target in rules
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_config_reload_adds_removes_and_rejects(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str], tmp_path: Path
) -> None:
    port = wsl_server(lab, servers)
    with lab.inside(lab.win):
        free = [listening_socket("127.0.0.1") for _ in range(2)]
    a, b = (s.getsockname()[1] for s in free)
    for s in free:
        s.close()
    cfg = tmp_path / "forward.toml"
    write_config(cfg, (f"127.0.0.1:{a}", f"{port}"))
    with forwarder("--config", str(cfg), prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        assert ping_from(lab, lab.win, "127.0.0.1", a) == b"ping"
        write_config(cfg, (f"127.0.0.1:{a}", f"{port}"), (f"127.0.0.1:{b}", f"wsl:{port}"))
        fwd.wait_event("reloaded", rules=2, timeout=5)
        assert ping_from(lab, lab.win, "127.0.0.1", b) == b"ping"
        write_config(cfg, (f"127.0.0.1:{b}", f"wsl:{port}"))
        fwd.wait_event("reloaded", rules=1, timeout=5)
        with pytest.raises(ConnectionRefusedError):
            ping_from(lab, lab.win, "127.0.0.1", a)
        cfg.write_text('[[forward]]\nlisten = "99999"\n')
        rejected = fwd.wait_event("reload-rejected", timeout=5)[0]
        assert "[[forward]] #1: field 'listen': listen port 99999 is out of range" in str(
            rejected["msg"]
        )
        assert ping_from(lab, lab.win, "127.0.0.1", b) == b"ping"  # still as it was


def test_lan_clients_outside_the_allow_list_are_refused(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    port = wsl_server(lab, servers)
    rules = (f"{WIN_LAN_IP}:0={port}", f"{WIN_LAN_IP}:0={port}")
    with forwarder(
        rules[0], "--allow", f"{LAN_IP}/32", prefix=lab.prefix(lab.win), env=fake_wsl
    ) as fwd:
        assert ping_from(lab, lab.lan, WIN_LAN_IP, fwd.port) == b"ping"
    with forwarder(
        rules[1], "--allow", "198.19.0.99/32", prefix=lab.prefix(lab.win), env=fake_wsl
    ) as fwd:
        with pytest.raises((ConnectionResetError, ConnectionRefusedError, BrokenPipeError)):
            data = ping_from(lab, lab.lan, WIN_LAN_IP, fwd.port)
            if not data:
                raise ConnectionResetError
        denied = fwd.wait_event("denied")[0]
        assert str(denied["client"]).startswith(LAN_IP) and denied["reason"] == "not-allowed"


PROM_LINE = re.compile(
    r'^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? \d+(\.\d+)?)$'
)


def api_get(url: str, token: str | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_control_api_needs_its_token_and_serves_prometheus_metrics(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    port = wsl_server(lab, servers)
    with forwarder(f"0={port}", "--api", "0", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        api = fwd.wait_event("api")[0]
        url, token_file = str(api["url"]), Path(str(api["token_file"]))
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        assert ping_from(lab, lab.win, "127.0.0.1", fwd.port) == b"ping"
        fwd.wait_event("conn")
        with lab.inside(lab.win):
            code, _ = api_get(url + "/v1/status", None)
            assert code == 401
            code, body = api_get(url + "/v1/status", token)
            status = json.loads(body)
            code_m, metrics = api_get(url + "/metrics", token)
            code_c, flows = api_get(url + "/v1/connections", token)
        assert code == 200 and code_m == 200 and code_c == 200
        assert_schema(status, "status")
        assert_schema(json.loads(flows), "connections")
        (rule,) = status["rules"]
        assert rule["resolved"] == [f"{WSL_IP}:{port}"] and rule["connections_total"] == 1
        lines = metrics.decode().strip().splitlines()
        assert all(PROM_LINE.match(line) for line in lines), lines
        assert any(line.startswith("wslnet_bytes_total{") and line.endswith(" 4") for line in lines)


def api_call(url: str, token: str, method: str, body: bytes | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_forwards_added_and_removed_through_the_api_and_wslnet_status(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    port = wsl_server(lab, servers)
    with forwarder("--api", "0", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        api = fwd.wait_event("api")[0]
        url, token = str(api["url"]), Path(str(api["token_file"])).read_text().strip()
        with lab.inside(lab.win):
            code, rule = api_call(url + "/v1/forwards", token, "POST", f"0={port}".encode())
            assert code == 201, rule
            bad, err = api_call(url + "/v1/forwards", token, "POST", b"99999")
        assert bad == 400 and "out of range" in err["error"]
        lport = int(rule["listen"][0].rsplit(":", 1)[1])
        assert ping_from(lab, lab.win, "127.0.0.1", lport) == b"ping"
        status = subprocess.run(
            [*lab.prefix(lab.win), sys.executable, "-m", "wslnet", "status"],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, **fake_wsl},
        )
        assert status.returncode == 0, status.stderr
        assert f"#{rule['id']} tcp 127.0.0.1:{lport} [::1]:{lport} -> wsl:{port}" in status.stdout
        with lab.inside(lab.win):
            code, gone = api_call(url + f"/v1/forwards/{rule['id']}", token, "DELETE")
            missing, _ = api_call(url + "/v1/forwards/999", token, "DELETE")
        assert (code, gone["removed"], missing) == (200, rule["id"], 404)
        with pytest.raises(ConnectionRefusedError):
            ping_from(lab, lab.win, "127.0.0.1", lport)


def test_targets_resolve_at_start_and_say_how(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    port = wsl_server(lab, servers)
    with forwarder(f"0={port}", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
        (resolved,) = fwd.wait_event("resolved")
        assert resolved["target"] == f"wsl:{port}" and resolved["address"] == f"{WSL_IP}:{port}"
        assert resolved["via"] == "wsl.exe -e ip -4 -o addr show dev eth0"


def test_a_stopped_distro_is_not_booted_unless_asked(
    lab: Lab, servers: ServerThread, fake_wsl: dict[str, str]
) -> None:
    folder = Path(fake_wsl["PATH"].split(":")[0])
    port = wsl_server(lab, servers)
    (folder / "stopped").touch()
    (folder / "booted").unlink(missing_ok=True)
    try:
        with forwarder(f"0={port}", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
            failed = fwd.wait_event("resolve-failed")[0]
            assert (
                failed["msg"] == "distro Ubuntu is stopped (wslnet forward --boot would start it)"
            )
            assert refused_with(lab, fwd) == (
                "connect-dns: distro Ubuntu is stopped (wslnet forward --boot would start it)"
            )
            assert not (folder / "booted").exists()
        with forwarder(f"0={port}", "--boot", prefix=lab.prefix(lab.win), env=fake_wsl) as fwd:
            fwd.wait_event("resolved")
            assert ping_from(lab, lab.win, "127.0.0.1", fwd.port) == b"ping"
            assert (folder / "booted").exists()
    finally:
        (folder / "stopped").unlink(missing_ok=True)
        (folder / "booted").unlink(missing_ok=True)
