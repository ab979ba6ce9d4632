"""Hostile surroundings and input, end to end: a stderr nobody reads, config files that
are not files or not sane, hostile API clients, a planted token file, rules that loop."""

from __future__ import annotations

import itertools
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
from collections.abc import Iterator
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
from tests.lab import LAN_IP, WIN_LAN_IP, Lab

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
    if sys.platform == "win32":  # the lab (and FIFOs, SIGHUP) are Linux's
        raise AssertionError("Linux only")
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
    if sys.platform == "win32":  # the lab (and FIFOs, SIGHUP) are Linux's
        raise AssertionError("Linux only")
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
    if sys.platform == "win32":  # the lab (and FIFOs, SIGHUP) are Linux's
        raise AssertionError("Linux only")
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


def test_hostile_api_requests_get_4xx_and_one_line_per_kind_and_no_traceback() -> None:
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
        errors = fwd.wait_event("api-error", count=2)
        assert [e["status"] for e in errors] == [400, 401]  # once a second per kind
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
        assert refused >= 100 - 64  # the oldest made room for the newest: closed at once
        for s in socks:
            s.settimeout(15)
        assert_closed_by_peer(socks[-1])  # the held ones: closed after the header timeout
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
        before = fwd.settled_fd_count()
        for _ in range(20):
            assert_closed_on_connect(socket.socket(), "127.0.0.1", port)
        loops = fwd.wait_event("rejected", reason="loop")
        assert str(loops[0]["client"]).startswith(("127.0.0.1:", "[::1]:"))
        deadline = time.monotonic() + 5
        while fwd.fd_count() != before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fwd.fd_count() == before


def test_status_reaches_a_forwarder_by_the_address_given_to_forward_api() -> None:
    ctx, port = api_forwarder()
    with ctx as fwd:  # type: ignore[attr-defined]
        res = subprocess.run(
            [sys.executable, "-m", "wslnet", "status", "--api", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=20, cwd=ROOT,
            env={**os.environ, "WSLNET_API_TOKEN": TOKEN},
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        f"wslnet forward, pid {fwd.proc.pid}, API http://127.0.0.1:{port}, up "
    )


# -- --log-file: only a regular file is rotated; what cannot be a log is refused at start --
def test_a_device_node_as_log_file_is_written_and_never_renamed(tmp_path: Path) -> None:
    if sys.platform == "win32":  # the lab (and FIFOs) are Linux's
        raise AssertionError("Linux only")
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    from wslnet.forward.core.log import RotatingFile

    log = RotatingFile(null, max_bytes=100)
    for n in range(50):  # far past max_bytes
        log.write(f"line {n}\n")
    log.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]
    assert stat.S_ISCHR(null.stat().st_mode)


# Root without the capabilities that override permission bits: held to them as any user
# is, while it can still read the checkout and venv wherever CI cloned them (a real other
# user such as nobody cannot when that folder is private).
NO_DAC_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_what_cannot_be_a_log_file_is_one_line_and_exit_2_at_start() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # the test sets every mode on the way
        home = Path(folder)
        home.chmod(0o755)
        ro = home / "ro.log"
        ro.write_text("")
        ro.chmod(0o444)
        rule = f"127.0.0.1:{free_port()}=127.0.0.1:9"
        argv = ["-m", "wslnet", "forward", rule, "--log-file", str(ro)]
        res = subprocess.run(
            [*NO_DAC_OVERRIDE, sys.executable, *argv],
            capture_output=True, text=True, timeout=10, cwd=ROOT, stdin=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home)},
        )  # fmt: skip
    assert (res.returncode, res.stderr) == (
        2, f"wslnet: cannot write --log-file {ro}: Permission denied\n",
    )  # fmt: skip
    # /dev/stderr is a link to the pipe the caller reads (run_cli captures stderr).
    res = run_cli("forward", rule, "--log-file", "/dev/stderr", timeout=10)
    assert (res.returncode, res.stderr) == (
        2, "wslnet: --log-file /dev/stderr is a pipe: give a file, or leave --log-file out"
        " to log to stderr\n",
    )  # fmt: skip


def test_two_forwarders_sharing_one_log_file_are_told_at_start(tmp_path: Path) -> None:
    log = tmp_path / "shared.log"
    procs = []
    try:
        for _ in range(2):
            cmd = [sys.executable, "-m", "wslnet", "forward", "--log-format", "json",
                   f"127.0.0.1:{free_port()}=127.0.0.1:9", "--log-file", str(log)]  # fmt: skip
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                not log.exists() or log.read_text().count('"started"') < len(procs)
            ):
                time.sleep(0.05)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    (told,) = [json.loads(ln) for ln in log.read_text().splitlines() if '"log-file"' in ln]
    assert (told["level"], told["event"], told["msg"]) == (
        "warning", "log-file",
        f"another program writes to {log} too: it is not rotated from here; give each "
        "forwarder a --log-file of its own",
    )  # fmt: skip


def test_a_flood_of_distinct_paths_is_logged_once_a_second_per_kind() -> None:
    ctx, port = api_forwarder()
    with ctx as fwd:  # type: ignore[attr-defined]
        for n in range(300):  # each a path of its own, no token: 401 each
            code, _ = api(port, f"/p{n}%0a2026-01-01T00:00:00%09info%09forged", Authorization="x")
            assert code == 401
        fwd.signal(signal.SIGTERM)
        fwd.wait()
    lines = [e for e in fwd.events if e["event"] == "api-error"]
    stamps = [float(str(e["ts"])) for e in lines]
    # the limiter counts on the monotonic clock, the stamps are wall time: a little slack
    assert all(b - a > 0.9 for a, b in itertools.pairwise(stamps))
    assert lines[0]["path"] == "/p0\\x0a2026-01-01T00:00:00\\x09info\\x09forged"
    assert not any("forged" in line and not line.startswith("{") for line in fwd.raw)


# -- the API's slots: silent clients cannot lock the local user out --
def silent(n: int, port: int, host: str = "127.0.0.1", source: str = "") -> list[socket.socket]:
    """n connections to the API that never say a word (from `source` where given)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        socks.append(s)
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def test_silent_loopback_connections_never_lock_the_local_user_out_of_the_api() -> None:
    ctx, port = api_forwarder()
    with ctx:  # type: ignore[attr-defined]
        held = silent(64, port)  # every slot there is, as the old gate counted them
        try:
            for _ in range(3):  # renewed as often as it likes
                held += silent(8, port)
                code, body = api(port, "/v1/status")
                assert code == 200 and json.loads(body)["rules"] == []
        finally:
            close_all(held)


def raw_status(sock: socket.socket, host: str, port: int, source: str = "") -> bytes:
    """The status line of GET /v1/status with the token, sent from `source`; b"" when
    the API closed the connection instead of answering."""
    sock.settimeout(5)
    with sock:
        if source:
            sock.bind((source, 0))
        sock.connect((host, port))
        request = f"GET /v1/status HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}"
        try:
            sock.sendall(f"{request}\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(4096).split(b"\r\n")[0]
        except ConnectionResetError:
            return b""


LAN_EXTRA = [f"198.19.0.{n}" for n in range(60, 68)]  # more LAN machines, in the lab's range


@pytest.fixture
def lan_machines(lab: Lab) -> Iterator[list[str]]:
    """The lab's LAN namespace with eight more addresses (removed afterwards)."""
    added = []
    try:
        for addr in LAN_EXTRA:
            lab.sh(lab.lan, f"ip addr add {addr}/24 dev eth0")
            added.append(addr)
        yield [LAN_IP, *LAN_EXTRA]
    finally:
        for addr in added:
            lab.sh(lab.lan, f"ip addr del {addr}/24 dev eth0", check=False)


def remote_api(lab: Lab, tmp_path: Path, *args: str) -> tuple[object, int]:
    """A forwarder in `win` whose API listens on every address, and the API's port."""
    port = 7070  # the namespace is the lab's own: nothing else listens there
    env = {"WSLNET_API_TOKEN": TOKEN, "XDG_RUNTIME_DIR": str(tmp_path)}
    args = ("--api", f"0.0.0.0:{port}", "--api-allow-remote", *args)
    return forwarder(*args, prefix=lab.prefix(lab.win), env=env), port


def test_silent_lan_clients_never_lock_the_local_user_out_of_a_remote_api(
    lab: Lab, lan_machines: list[str], tmp_path: Path
) -> None:
    ctx, port = remote_api(lab, tmp_path)
    held: list[socket.socket] = []
    with ctx:  # type: ignore[attr-defined]
        try:
            with lab.inside(lab.lan):  # 9 machines, 12 silent connections each: 108
                for source in lan_machines:
                    held += silent(12, port, WIN_LAN_IP, source)
            with lab.inside(lab.win):
                assert api(port, "/v1/status")[0] == 200
            with lab.inside(lab.lan):  # and a remote client with the token still gets in
                assert raw_status(socket.socket(), WIN_LAN_IP, port, LAN_IP) == (b"HTTP/1.1 200 OK")
        finally:
            close_all(held)


EXPOSED = (
    "the API listens beyond loopback on plain HTTP, so its bearer token crosses the "
    "network unencrypted; "
)


def test_a_remote_api_warns_at_start_that_its_token_crosses_the_network(
    lab: Lab, tmp_path: Path
) -> None:
    ctx, port = remote_api(lab, tmp_path)
    with ctx as fwd:  # type: ignore[attr-defined]
        (warned,) = fwd.wait_event("api", level="warning")
    assert warned["msg"] == EXPOSED + (
        "anyone who can connect may try it: limit them with --allow CIDR"
    )
    assert warned["url"] == f"http://0.0.0.0:{port}"


def test_allow_limits_who_may_reach_a_remote_api(
    lab: Lab, lan_machines: list[str], tmp_path: Path
) -> None:
    ctx, port = remote_api(lab, tmp_path, "--allow", f"{LAN_IP}/32")
    with ctx as fwd:  # type: ignore[attr-defined]
        with lab.inside(lab.lan):
            assert raw_status(socket.socket(), WIN_LAN_IP, port, LAN_IP) == b"HTTP/1.1 200 OK"
            assert raw_status(socket.socket(), WIN_LAN_IP, port, LAN_EXTRA[0]) == b""
        with lab.inside(lab.win):  # loopback always may
            assert api(port, "/v1/status")[0] == 200
        fwd.wait_event("api-error", msg="an API client not on --allow")
        (warned,) = fwd.wait_event("api", level="warning")
        assert warned["msg"] == EXPOSED + "only loopback and --allow networks may connect"


def test_a_symlinked_state_folder_is_refused_before_any_rule_listens(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "wslnet").symlink_to(tmp_path / "elsewhere")
    rule = f"127.0.0.1:{free_port()}=127.0.0.1:9"
    res = subprocess.run(
        [sys.executable, "-m", "wslnet", "forward", rule, "--api", str(free_port())],
        capture_output=True, text=True, timeout=20, cwd=ROOT, stdin=subprocess.DEVNULL,
        env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
    )  # fmt: skip
    # One line and nothing else: no "listening" line, so no rule port was ever bound.
    assert (res.returncode, res.stderr) == (
        2, f"wslnet: {tmp_path / 'wslnet'} is not a directory; remove it so wslnet can make one\n",
    )  # fmt: skip


def as_nobody(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`wslnet ARGS` held to permission bits as an ordinary user is, with `home` as its
    HOME and state folder."""
    return subprocess.run(
        [*NO_DAC_OVERRIDE, sys.executable, "-m", "wslnet", *args],
        capture_output=True, text=True, timeout=10, cwd=ROOT, stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home)},
    )  # fmt: skip


def test_an_unreadable_default_config_file_is_one_line_and_exit_2() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # the test sets every mode on the way
        home = Path(folder)
        home.chmod(0o755)
        conf_dir = home / ".config" / "wslnet"
        conf_dir.mkdir(parents=True)
        (home / ".config").chmod(0o755)
        conf = conf_dir / "forward.toml"
        conf.write_text('[[forward]]\nlisten = "127.0.0.1:0"\ntarget = "127.0.0.1:9"\n')
        results = []
        for file_mode, dir_mode in ((0o000, 0o755), (0o644, 0o000)):  # the file, its folder
            conf.chmod(file_mode)
            conf_dir.chmod(dir_mode)
            results.append(as_nobody(home, "forward"))
    for res in results:
        assert (res.returncode, res.stderr) == (
            2, f"wslnet: {conf}: cannot read it: Permission denied\n",
        )  # fmt: skip
