"""Hostile surroundings and input, end to end: a stderr nobody reads, config files that
are not files or not sane, hostile API clients, a planted token file, rules that loop."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    ServerThread,
    assert_closed_by_peer,
    assert_closed_on_connect,
    echo,
    echo_round_trip,
    forwarder,
    free_port,
    run_cli,
)

pytestmark = pytest.mark.lab  # end to end: real forwarder processes

TOKEN = "t0ken-for-tests"


def api(
    port: int, path: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {TOKEN}", **headers}
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_stderr_nobody_reads_never_stops_forwarding(servers: ServerThread) -> None:
    """The log's pipe fills after a few hundred lines; forwarding must go on, and the
    lines lost are counted in /metrics and in a log-dropped line once it drains."""
    target = servers.serve(echo)
    port, api_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wslnet", "forward", f"127.0.0.1:{port}=127.0.0.1:{target}",
         "--api", str(api_port), "--log-format", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=ROOT, env={**os.environ, "WSLNET_API_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for _ in range(14_000):  # one conn line each: far past the pipe and the queue
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x"
        code, text = api(api_port, "/metrics")
        assert code == 200
        dropped = [ln for ln in text.decode().splitlines() if ln.startswith("wslnet_log_dropped")]
        assert dropped and int(dropped[0].split()[-1]) > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        lines = [json.loads(line) for line in proc.stderr]  # reading drains the pipe
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    lost = [e for e in lines if e["event"] == "log-dropped"]
    assert lost and sum(int(e["lines"]) for e in lost) > 0


def write(path: Path, text: str) -> None:
    tmp = path.with_name("tmp.toml")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomically, so the watcher never reads half a file


def rule_file(target: int, proto: str = "tcp") -> str:
    listen = f'listen = "127.0.0.1:0"\nproto = "{proto}"\n'
    return f'[[forward]]\n{listen}target = "127.0.0.1:{target}"\n'


BAD_FILES = [
    ('[[forward]]\nlisten = "127.0.0.1:²"\n', "listen port '²' is not a number"),
    ("[[forward]]\nlisten = " + "9" * 5000 + "\n", "not valid TOML"),
    ("x = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("[[forward]]\nlisten = 1" + "0" * 30 + "\n", "listen port"),
]


def good_config(servers: ServerThread, tmp_path: Path) -> tuple[Path, int]:
    """A config file with one rule to a live echo server, and that server's port."""
    target = servers.serve(echo)
    conf = tmp_path / "forward.toml"
    conf.write_text(rule_file(target))
    return conf, target


def test_the_config_watcher_survives_every_bad_rewrite(
    servers: ServerThread, tmp_path: Path
) -> None:
    conf, target = good_config(servers, tmp_path)
    with forwarder("--config", str(conf)) as fwd:
        for n, (text, why) in enumerate(BAD_FILES, 1):
            write(conf, text)
            rejected = fwd.wait_event("reload-rejected", count=n, timeout=10)[-1]
            assert why in str(rejected["msg"])
        write(conf, rule_file(target) + rule_file(target, "udp"))
        assert fwd.wait_event("reloaded", timeout=10)[0]["rules"] == 2
        # SIGHUP reads the same bad files the same way: rejected, never internal-error.
        write(conf, BAD_FILES[2][0])
        time.sleep(1.5)  # let the watcher see this one first
        count = len(fwd.wait_event("reload-rejected"))
        fwd.signal(signal.SIGHUP)
        fwd.wait_event("reload-rejected", count=count + 1)
        assert "internal-error" not in fwd.log_text()


def test_a_fifo_or_a_device_as_config_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "forward.toml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        res = run_cli("forward", "--config", str(path), timeout=10)
        assert (res.returncode, res.stderr.strip()) == (2, f"wslnet: {path}: not a regular file")
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (2 << 20))
    res = run_cli("forward", "--config", str(huge))
    assert res.returncode == 2 and "larger than 1024 KiB" in res.stderr


def test_a_config_file_replaced_by_a_fifo_is_rejected_and_forwarding_goes_on(
    servers: ServerThread, tmp_path: Path
) -> None:
    conf, _ = good_config(servers, tmp_path)
    with forwarder("--config", str(conf)) as fwd:
        conf.unlink()
        os.mkfifo(conf)
        rejected = fwd.wait_event("reload-rejected", timeout=10)[0]
        assert str(rejected["msg"]).endswith("not a regular file")
        echo_round_trip(fwd.port).close()  # the loop was never blocked


def api_forwarder(*args: str) -> tuple[object, int]:
    port = free_port()
    return forwarder("--api", str(port), *args, env={"WSLNET_API_TOKEN": TOKEN}), port


def test_hostile_api_requests_get_4xx_one_line_each_and_no_traceback() -> None:
    ctx, port = api_forwarder()
    with ctx as fwd:  # type: ignore[attr-defined]
        as_json = {"Content-Type": "application/json"}
        cases = [
            (b"[1, 2]", as_json),
            (b"\xff\xfe8080", {"Content-Type": "text/plain"}),
            (b"[" * 50_000, as_json),
            (b'{"listen": "80", "allow": [1]}', as_json),
        ]
        for body, headers in cases:
            code, answer = api(port, "/v1/forwards", "POST", body, **headers)
            assert code == 400 and "error" in json.loads(answer)
        # Non-ASCII bytes in the header itself, no valid token: 401, not 500.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: Bearer \xff\xfe\r\n\r\n"
            )
            assert s.recv(100).startswith(b"HTTP/1.1 401")
        errors = fwd.wait_event("api-error", count=len(cases) + 1)
        assert [e["status"] for e in errors] == [400, 400, 400, 400, 401]
        fwd.signal(signal.SIGTERM)
        fwd.wait()
    assert all(line.startswith("{") for line in fwd.raw), "".join(fwd.raw)[-2000:]


def test_half_open_api_connections_are_capped_and_timed_out() -> None:
    ctx, port = api_forwarder()
    with ctx as fwd:  # type: ignore[attr-defined]
        socks = []
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(s)
        time.sleep(0.5)
        refused = 0
        for s in socks:
            s.settimeout(0.05)
            try:
                refused += s.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                refused += 1
        assert refused >= 100 - 64  # past the cap: closed at once
        for s in socks:
            s.settimeout(15)
        assert_closed_by_peer(socks[0])  # the held ones: closed after the header timeout
        for s in socks:
            s.close()
        assert api(port, "/healthz") == (200, b"ok\n")
        fwd.signal(signal.SIGTERM)
        assert fwd.wait() == 0


def test_the_token_is_private_whatever_was_left_in_the_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "wslnet"
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    stale = state / "api-token.tmp"
    stale.write_text("stale")
    stale.chmod(0o644)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (state / "api.json.tmp").symlink_to(victim)
    port = free_port()
    with forwarder("--api", str(port), env={"XDG_RUNTIME_DIR": str(tmp_path)}) as fwd:
        fwd.wait_event("api")
        token = (state / "api-token").read_text().strip()
        assert stat.S_IMODE((state / "api-token").stat().st_mode) == 0o600
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert victim.read_text() == "keep me"
        assert json.loads((state / "api.json").read_text())["url"].endswith(f":{port}")
        assert len(token) > 20


def test_a_rule_that_forwards_to_itself_is_refused_at_start() -> None:
    port = free_port()
    res = run_cli("forward", f"{port}=127.0.0.1:{port}")
    assert res.returncode == 2
    assert f"forwards to itself (127.0.0.1:{port} -> 127.0.0.1:{port})" in res.stderr
    a, b = free_port(), free_port()
    res = run_cli("forward", f"127.0.0.1:{a}=127.0.0.1:{b}", f"127.0.0.1:{b}=127.0.0.1:{a}")
    assert res.returncode == 2 and "forwards to itself" in res.stderr


def test_a_loop_through_a_name_is_cut_at_the_first_turn_and_leaks_nothing() -> None:
    port = free_port()
    with forwarder(f"127.0.0.1:{port}=localhost:{port}") as fwd:
        before = fwd.fd_count()
        for _ in range(20):
            assert_closed_on_connect(socket.socket(), "127.0.0.1", port)
        loops = fwd.wait_event("rejected", reason="loop")
        assert loops[0]["client"].startswith(("127.0.0.1:", "[::1]:"))
        deadline = time.monotonic() + 5
        while fwd.fd_count() != before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fwd.fd_count() == before


def test_status_reaches_a_forwarder_by_the_address_given_to_forward_api() -> None:
    ctx, port = api_forwarder()
    with ctx:  # type: ignore[attr-defined]
        res = subprocess.run(
            [sys.executable, "-m", "wslnet", "status", "--api", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=20, cwd=ROOT,
            env={**os.environ, "WSLNET_API_TOKEN": TOKEN},
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("wslnet forward, up ")
