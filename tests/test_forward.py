"""`wslnet forward` on loopback: real sockets, a real forwarder process."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from tests.helpers import (
    ForwarderProcess,
    ServerThread,
    assert_closed_on_connect,
    echo,
    echo_round_trip,
    forwarder,
    free_port,
    greet_and_half_close,
    imported_modules,
    listening_socket,
    reply_after_eof,
    reset_close,
    run_cli,
)

ENGINES = [
    pytest.param(("--engine", "splice", "--loop", "uvloop"), id="splice-uvloop"),
    pytest.param(("--engine", "splice", "--loop", "asyncio"), id="splice-asyncio"),
    pytest.param(("--engine", "protocol", "--loop", "uvloop"), id="protocol-uvloop"),
    pytest.param(("--engine", "protocol", "--loop", "asyncio"), id="protocol-asyncio"),
]
MiB = 1 << 20

pytestmark = pytest.mark.lab  # end to end: real processes (and the lab)


def connect(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def send_stream(sock: socket.socket, total: int, seed: int, digest: list[str]) -> None:
    """Sends `total` pseudo-random bytes, then half-closes; records their SHA-256."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    left = total
    while left:
        chunk = rng.randbytes(min(left, MiB))
        h.update(chunk)
        sock.sendall(chunk)
        left -= len(chunk)
    sock.shutdown(socket.SHUT_WR)
    digest.append(h.hexdigest())


@pytest.mark.parametrize("engine", ENGINES)
def test_256_mib_each_way_arrive_intact(servers: ServerThread, engine: tuple[str, ...]) -> None:
    port = servers.serve(echo)
    with forwarder(f"0={'127.0.0.1'}:{port}", *engine) as fwd:
        sock = connect(fwd.port)
        sent: list[str] = []
        writer = threading.Thread(target=send_stream, args=(sock, 256 * MiB, 1, sent))
        writer.start()
        h = hashlib.sha256()
        received = 0
        while data := sock.recv(MiB):
            h.update(data)
            received += len(data)
        writer.join()
        sock.close()
        assert received == 256 * MiB
        assert h.hexdigest() == sent[0]
        end = fwd.wait_event("conn")[0]
        assert (end["up"], end["down"], end["reason"]) == (256 * MiB, 256 * MiB, "closed")


@pytest.mark.parametrize("engine", ENGINES)
def test_many_small_writes_arrive_in_order(servers: ServerThread, engine: tuple[str, ...]) -> None:
    port = servers.serve(echo)
    rng = random.Random(7)
    pieces = [rng.randbytes(rng.randint(1, 200)) for _ in range(20000)]
    with forwarder(f"0=127.0.0.1:{port}", *engine) as fwd:
        sock = connect(fwd.port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def write() -> None:
            for piece in pieces:
                sock.send(piece)
            sock.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=write)
        writer.start()
        got = recv_all(sock)
        writer.join()
        sock.close()
    assert got == b"".join(pieces)


@pytest.mark.parametrize("engine", ENGINES)
def test_half_closed_client_still_gets_reply(
    servers: ServerThread, engine: tuple[str, ...]
) -> None:
    port = servers.serve(reply_after_eof)
    with forwarder(f"0=127.0.0.1:{port}", *engine) as fwd:
        # What `printf 'hi' | nc -N 127.0.0.1 PORT` does.
        sock = connect(fwd.port, timeout=5)
        sock.sendall(b"hi")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"got 2 bytes: hi"
        sock.close()
        assert fwd.wait_event("conn")[0]["reason"] == "closed"


@pytest.mark.parametrize("engine", ENGINES)
def test_server_that_half_closes_first_still_hears_the_client(
    servers: ServerThread, engine: tuple[str, ...]
) -> None:
    received: list[bytes] = []
    port = servers.serve(greet_and_half_close(received))
    with forwarder(f"0=127.0.0.1:{port}", *engine) as fwd:
        sock = connect(fwd.port, timeout=5)
        assert recv_all(sock) == b"hello\n"  # the server's FIN reached us...
        sock.sendall(b"still talking")  # ...and our side is still open
        sock.shutdown(socket.SHUT_WR)
        fwd.wait_event("conn")
        sock.close()
    assert received == [b"still talking"]


@pytest.mark.parametrize("engine", ENGINES[::2])
def test_target_reset_resets_the_client(engine: tuple[str, ...]) -> None:
    target = listening_socket()
    with forwarder(f"0=127.0.0.1:{target.getsockname()[1]}", *engine) as fwd:
        client = connect(fwd.port, timeout=5)
        server, _ = target.accept()
        client.sendall(b"x")
        assert server.recv(1) == b"x"
        reset_close(server)
        with pytest.raises(ConnectionResetError):
            client.recv(1024)
        end = fwd.wait_event("conn")[0]
        assert end["reason"] == "target-reset"
        client.close()
    target.close()


def _connection_fds(fwd: ForwarderProcess) -> dict[int, str]:
    """The sockets and pipes the forwarder holds: what a connection leaks. (The loop may
    open descriptors of its own lazily, as libuv does /dev/null for EMFILE.)"""
    return {k: v for k, v in fwd.fds().items() if v.startswith(("socket:", "pipe:"))}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_target_that_resets_every_connection_at_once_ends_each_cleanly(
    engine: tuple[str, ...],
) -> None:
    """The reset comes while the forwarder is still making the target's transport (on
    uvloop, between connection_made and the end of create_connection): every client
    hears the end at once, nothing is written to a closed transport (uvloop raises on
    that: internal-error), and no descriptor is left or closed twice."""
    target = listening_socket()

    def reset_all() -> None:
        while True:
            try:
                conn, _ = target.accept()
            except OSError:
                return
            reset_close(conn)

    threading.Thread(target=reset_all, daemon=True).start()
    with forwarder(f"0=127.0.0.1:{target.getsockname()[1]}", *engine) as fwd:
        for _ in range(3):  # the loop's own lazy descriptors come first
            try:
                with connect(fwd.ports[0], timeout=5) as s:
                    s.sendall(b"x")
                    s.recv(1)
            except ConnectionResetError:
                pass
        time.sleep(0.2)
        fwd.settled_fd_count()
        held = _connection_fds(fwd)
        slow = []
        for _ in range(300):
            started = time.monotonic()
            try:
                with connect(fwd.ports[0], timeout=5) as s:
                    s.sendall(b"x")
                    assert s.recv(1) == b""
            except ConnectionResetError:
                pass
            if time.monotonic() - started > 2:
                slow.append(round(time.monotonic() - started, 1))
        assert slow == []  # a client left waiting: its socket was never closed
        ends = fwd.wait_event("conn", count=300)
        kinds = {str(e["reason"]).split(":")[0] for e in ends}
        assert kinds <= {"target-reset", "connect-error"}, kinds
        assert [e for e in fwd.events if e.get("event") == "internal-error"] == []
        deadline = time.monotonic() + 10
        while _connection_fds(fwd) != held and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _connection_fds(fwd) == held
    target.close()


@pytest.mark.parametrize("engine", ENGINES[::2])
def test_client_reset_resets_the_target(engine: tuple[str, ...]) -> None:
    target = listening_socket()
    with forwarder(f"0=127.0.0.1:{target.getsockname()[1]}", *engine) as fwd:
        client = connect(fwd.port, timeout=5)
        server, _ = target.accept()
        server.settimeout(5)
        client.sendall(b"x")
        assert server.recv(1) == b"x"
        reset_close(client)
        with pytest.raises(ConnectionResetError):
            server.recv(1024)
        assert fwd.wait_event("conn")[0]["reason"] == "client-reset"
        server.close()
    target.close()


@pytest.mark.parametrize("engine", ENGINES[::2])
def test_memory_stays_bounded_with_a_slow_reader(engine: tuple[str, ...]) -> None:
    """512 MiB from a fast sender to a reader that crawls: the forwarder must not buffer."""
    total = 512 * MiB
    target = listening_socket()
    with forwarder(f"0=127.0.0.1:{target.getsockname()[1]}", *engine) as fwd:
        client = connect(fwd.port)
        server, _ = target.accept()
        # Small kernel buffers on the reader side, so that the forwarder feels the pressure.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        base = fwd.rss()
        peak = base
        sent: list[str] = []
        writer = threading.Thread(target=send_stream, args=(client, total, 3, sent))
        writer.start()
        h = hashlib.sha256()
        got = 0
        reads = 0
        while data := server.recv(256 * 1024):
            h.update(data)
            got += len(data)
            reads += 1
            if reads % 64 == 0:
                peak = max(peak, fwd.rss())
                time.sleep(0.002)  # crawl
        writer.join()
        assert got == total and h.hexdigest() == sent[0]
        # The README promises at most 1 MiB of data per connection; allow 8 MiB of heap noise.
        assert peak - base < 9 * MiB, f"RSS grew by {(peak - base) / MiB:.1f} MiB"
        client.close()
        server.close()
    target.close()


@pytest.mark.parametrize("engine", ENGINES[::2])
def test_refused_target_closes_client_promptly_and_keeps_serving(
    servers: ServerThread, engine: tuple[str, ...]
) -> None:
    dead = free_port()
    live = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{dead}", f"0=127.0.0.1:{live}", *engine) as fwd:
        dead_port, live_port = fwd.ports
        t0 = time.monotonic()
        assert_closed_on_connect(socket.socket(), "127.0.0.1", dead_port)
        assert time.monotonic() - t0 < 2
        end = fwd.wait_event("conn", rule=1)[0]
        assert end["reason"] == "connect-refused"
        assert end["level"] == "warning"
        # The forwarder still serves, on both rules.
        with connect(live_port) as ok:
            ok.sendall(b"ping")
            assert ok.recv(4) == b"ping"


def test_max_conns_is_enforced_and_logged(servers: ServerThread) -> None:
    port = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{port}", "--max-conns", "2") as fwd:
        held = [connect(fwd.port) for _ in range(2)]
        for s in held:
            s.sendall(b"a")
            assert s.recv(1) == b"a"
        assert_closed_on_connect(socket.socket(), "127.0.0.1", fwd.port)
        rejected = fwd.wait_event("rejected")[0]
        assert rejected["reason"] == "max-conns" and rejected["limit"] == 2
        held[0].close()
        fwd.wait_event("conn")
        with connect(fwd.port) as again:
            again.sendall(b"c")
            assert again.recv(1) == b"c"
        held[1].close()


def test_idle_timeout_closes_idle_connections_only(servers: ServerThread) -> None:
    port = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{port}", "--idle-timeout", "0.6") as fwd:
        idle = connect(fwd.port, timeout=5)
        busy = connect(fwd.port, timeout=5)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            busy.sendall(b"k")
            assert busy.recv(1) == b"k"
            time.sleep(0.1)
        assert idle.recv(1) == b""  # closed by the forwarder
        end = fwd.wait_event("conn")
        assert [e["reason"] for e in end] == ["idle-timeout"]
        busy.sendall(b"z")
        assert busy.recv(1) == b"z"
        busy.close()
        idle.close()


def test_port_in_use_names_the_program_and_pid_and_exits_2() -> None:
    taken = listening_socket("0.0.0.0")
    port = taken.getsockname()[1]
    res = run_cli("forward", f"{port}=127.0.0.1:1")
    taken.close()
    me = Path("/proc/self/comm").read_text().strip()  # this test's process holds it
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"wslnet: cannot listen on 127.0.0.1:{port}: address already in use: "
        f"{me} (pid {os.getpid()}) listens there; stop it or pick another port"
    )


@pytest.mark.parametrize("proto", ["", "udp/"])
def test_two_rules_on_one_port_name_the_first_rule_and_exit_2(proto: str) -> None:
    port = free_port()
    first = f"{proto}{port}=localhost:8000"
    res = run_cli("forward", first, f"{proto}{port}=127.0.0.1:3000", timeout=10)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"wslnet: cannot listen on {proto}127.0.0.1:{port}: rule 1 ({first}) already listens there"
    )


def test_address_not_available_names_the_address() -> None:
    res = run_cli("forward", "198.18.200.1:8080=127.0.0.1:1", "--allow-any")
    assert res.returncode == 2
    assert "cannot listen on 198.18.200.1:8080: address not available" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_rule_beyond_loopback_must_say_who_may_connect() -> None:
    res = run_cli("forward", "0.0.0.0:8080=127.0.0.1:1")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "wslnet: rule '0.0.0.0:8080=127.0.0.1:1' listens on 0.0.0.0, beyond this machine: say "
        "who may connect with --allow CIDR (or allow = [...] in the config file), or --allow-any"
    )


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="dropping a capability takes root"
)
def test_privileged_port_without_the_capability_says_permission_denied() -> None:
    # Root without CAP_NET_BIND_SERVICE is refused ports below 1024, like a plain user.
    res = run_cli(
        "forward",
        "127.0.0.1:81=127.0.0.1:1",
        prefix=("setpriv", "--bounding-set=-net_bind_service"),
    )
    assert res.returncode == 2, res.stderr
    assert "cannot listen on 127.0.0.1:81: permission denied" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("rule", ["99999", "abc=def", "0", "8080=host-without-port"])
def test_bad_rules_exit_2_with_the_expected_form(rule: str) -> None:
    res = run_cli("forward", rule)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wslnet: bad rule {rule!r}")
    assert "expected [tcp/|udp/][HOST:]PORT[=[HOST:]PORT]" in lines[0]


def test_bad_option_values_exit_2() -> None:
    res = run_cli("forward", "8080=127.0.0.1:1", "--max-conns", "0")
    assert (res.returncode, res.stderr.strip()) == (2, "wslnet: --max-conns must be at least 1")


def test_sigterm_stops_accepting_and_drains_open_connections(servers: ServerThread) -> None:
    port = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{port}", "--drain", "10") as fwd:
        sock = echo_round_trip(fwd.port)
        fwd.signal(signal.SIGTERM)
        fwd.wait_event("stopping")
        with pytest.raises(ConnectionRefusedError):
            connect(fwd.port, timeout=2)
        sock.sendall(b"still here")  # the open connection keeps working while draining
        assert sock.recv(100) == b"still here"
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b""
        sock.close()
        assert fwd.wait(timeout=5) == 0  # exits once drained, long before --drain ends
        assert fwd.wait_event("conn")[0]["reason"] == "closed"


def test_drain_deadline_resets_what_is_left_and_exits_0(servers: ServerThread) -> None:
    port = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{port}", "--drain", "0.5") as fwd:
        sock = echo_round_trip(fwd.port)
        fwd.signal(signal.SIGINT)
        assert fwd.wait(timeout=5) == 0
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
        assert fwd.wait_event("conn")[0]["reason"] == "shutdown"
        sock.close()


def test_second_signal_exits_at_once(servers: ServerThread) -> None:
    port = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{port}", "--drain", "60") as fwd:
        sock = echo_round_trip(fwd.port)
        fwd.signal(signal.SIGTERM)
        fwd.wait_event("stopping")
        fwd.signal(signal.SIGTERM)
        assert fwd.wait(timeout=5) == 0
        sock.close()


def test_text_log_has_one_line_per_connection(servers: ServerThread) -> None:
    port = servers.serve(echo)
    lport = free_port()
    fwd = ForwarderProcess(f"127.0.0.1:{lport}=127.0.0.1:{port}", "--log-format", "text")
    try:
        fwd.wait_line(" started ")
        with connect(lport) as s:
            s.sendall(b"hello")
            assert s.recv(5) == b"hello"
        fwd.signal(signal.SIGTERM)
        fwd.wait()
    finally:
        fwd.stop()
    conn_lines = [line for line in fwd.log_text().splitlines() if " conn " in line]
    assert len(conn_lines) == 1
    line = conn_lines[0]
    for field in (
        "rule=1",
        "client=127.0.0.1:",
        f"target=127.0.0.1:{port}",
        "up=5",
        "down=5",
        "duration=",
        "reason=closed",
    ):
        assert field in line, line


@pytest.mark.parametrize("engine", ENGINES[::2])
def test_no_descriptor_leak_after_thousands_of_connections(
    servers: ServerThread, engine: tuple[str, ...]
) -> None:
    live = servers.serve(echo)
    dead = free_port()
    with forwarder(f"0=127.0.0.1:{live}", f"0=127.0.0.1:{dead}", *engine) as fwd:
        live_port, dead_port = fwd.ports
        with connect(live_port) as warm:  # let lazy imports and pools settle first
            warm.sendall(b"w")
            assert warm.recv(1) == b"w"
        # And the loop's own lazy descriptors: one of each kind of connection first.
        try:
            with connect(dead_port) as s:
                s.recv(1)
        except ConnectionResetError:
            pass
        reset_close(connect(live_port))
        time.sleep(0.2)
        fwd.settled_fd_count()
        held = _connection_fds(fwd)
        for i in range(3000):
            kind = i % 3
            if kind == 0:  # a full exchange
                with connect(live_port) as s:
                    s.sendall(b"abc")
                    assert s.recv(3) == b"abc"
            elif kind == 1:  # target refuses: the reset may beat connect() itself
                try:
                    with connect(dead_port) as s:
                        s.recv(1)
                except ConnectionResetError:
                    pass
            else:  # client resets mid-connection
                s = connect(live_port)
                s.sendall(b"x")
                reset_close(s)
        deadline = time.monotonic() + 10
        while _connection_fds(fwd) != held and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _connection_fds(fwd) == held


async def _one_client(port: int, seed: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = random.Random(seed).randbytes(4096)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    got = await reader.read()
    writer.close()
    return got == payload


@pytest.mark.parametrize("engine", ENGINES[::2])
def test_2000_concurrent_connections_all_intact(
    servers: ServerThread, engine: tuple[str, ...]
) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX descriptor limits")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    port = servers.serve(echo)
    with forwarder(f"0=127.0.0.1:{port}", *engine) as fwd:

        async def main() -> list[bool]:
            return await asyncio.gather(*(_one_client(fwd.port, i) for i in range(2000)))

        results = asyncio.run(main())
    assert results.count(True) == 2000


def test_udp_target_port_unreachable_ends_the_session() -> None:
    dead = free_port()
    with (
        forwarder(f"udp/127.0.0.1:0=127.0.0.1:{dead}") as fwd,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c,
    ):
        c.sendto(b"anyone?", ("127.0.0.1", fwd.port))
        end = fwd.wait_event("udp-session")[0]
    assert end["reason"] == "target-unreachable (ICMP port unreachable)"
    assert (end["up"], end["down"]) == (7, 0)


@pytest.mark.parametrize("engine", ENGINES[1:3])
def test_udp_datagram_boundaries_and_the_largest_datagram_survive(engine: tuple[str, ...]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.settimeout(5)
        with (
            forwarder(f"udp/127.0.0.1:0=127.0.0.1:{srv.getsockname()[1]}", *engine) as fwd,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c,
        ):
            c.settimeout(5)
            sizes = [1, 65507, 0, 3, 1472, 2]  # 0: an empty datagram is one too
            for n in sizes:
                c.sendto(bytes([n % 256]) * n, ("127.0.0.1", fwd.port))
            for n in sizes:
                data, peer = srv.recvfrom(70000)
                assert data == bytes([n % 256]) * n
                srv.sendto(data[::-1], peer)
            assert [len(c.recv(70000)) for _ in sizes] == sizes


def test_forward_without_api_never_imports_aiohttp(servers: ServerThread) -> None:

    port = servers.serve(echo)
    fwd = ForwarderProcess(f"127.0.0.1:0=127.0.0.1:{port}", python_args=("-X", "importtime"))
    try:
        fwd.started()
        fwd.signal(signal.SIGTERM)
        assert fwd.wait() == 0
    finally:
        fwd.stop()
    imported = imported_modules(fwd.log_text())
    assert "wslnet.forward.core.server" in imported  # the measurement saw the forwarder
    assert not {m for m in imported if m.split(".")[0] in ("aiohttp", "scapy")}


def test_udp_sessions_leave_no_descriptors_behind() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        rule = f"udp/127.0.0.1:0=127.0.0.1:{srv.getsockname()[1]}"
        with forwarder(rule, "--udp-timeout", "0.3") as fwd:
            before = fwd.settled_fd_count()
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(200)]
            for c in clients:
                c.sendto(b"x", ("127.0.0.1", fwd.port))
            fwd.wait_event("udp-session", count=200, timeout=10)
            for c in clients:
                c.close()
            deadline = time.monotonic() + 5  # a transport closes on the loop's next turn
            while fwd.fd_count() != before and time.monotonic() < deadline:
                time.sleep(0.1)
            assert fwd.fd_count() == before


def test_config_file_settings_are_defaults_that_flags_override(
    servers: ServerThread, tmp_path: Path
) -> None:
    port = servers.serve(echo)
    conf = tmp_path / "forward.toml"
    rule = f'[[forward]]\nlisten = "127.0.0.1:0"\ntarget = "127.0.0.1:{port}"\n'
    conf.write_text("drain = 7\n" + rule)
    for flags, drain in (((), 7), (("--drain", "1"), 1)):
        with forwarder("--config", str(conf), *flags) as fwd:
            echo_round_trip(fwd.port).close()
            fwd.signal(signal.SIGTERM)
            assert fwd.wait() == 0
            assert fwd.wait_event("stopping")[0]["drain"] == drain
            assert fwd.wait_event("listening")[0]["rule"] == 1


@pytest.mark.parametrize("engine", ENGINES[1:3])
def test_sigterm_with_udp_and_tcp_rules_and_open_sessions_exits_0(
    servers: ServerThread, engine: tuple[str, ...]
) -> None:
    tcp = servers.serve(echo)
    udp_target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_target.bind(("127.0.0.1", 0))
    rules = (f"0=127.0.0.1:{tcp}", f"udp/0=127.0.0.1:{udp_target.getsockname()[1]}")
    with forwarder(*rules, *engine) as fwd:
        tcp_port, udp_port = fwd.ports
        sock = echo_round_trip(tcp_port)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.sendto(b"hi", ("127.0.0.1", udp_port))
        assert udp_target.recvfrom(10)[0] == b"hi"  # a session is open
        fwd.signal(signal.SIGTERM)
        sock.close()
        assert fwd.wait(timeout=10) == 0
        assert fwd.wait_event("udp-session")[0]["reason"] == "shutdown"
        assert "internal-error" not in fwd.log_text()
        client.close()
    udp_target.close()


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


def udp_echo(servers: ServerThread) -> asyncio.DatagramTransport:
    """A UDP echo server on loopback, on the servers' loop."""

    async def start() -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(UdpEcho, ("127.0.0.1", 0))
        return transport

    return asyncio.run_coroutine_threadsafe(start(), servers.loop).result(5)


def test_a_udp_flood_under_a_low_fd_limit_leaves_tcp_and_new_udp_clients_working(
    servers: ServerThread,
) -> None:
    # Issue 20: at 1,024 sessions per rule a flood took every descriptor, TCP stopped
    # answering and newcomers were locked out until the idle timeout.
    tcp, udp = servers.serve(echo), udp_echo(servers)
    target = udp.get_extra_info("sockname")[1]
    limit = ("prlimit", "--nofile=256:256", "--")
    try:
        with forwarder(f"0=127.0.0.1:{tcp}", f"udp/0=127.0.0.1:{target}", prefix=limit) as fwd:
            assert fwd.wait_event("started")[0]["udp_budget"] == 128
            tcp_port, udp_port = fwd.ports
            deadline = time.monotonic() + 20
            for _ in range(600):  # each from a source port never used before
                if time.monotonic() > deadline:
                    break
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(b"flood", ("127.0.0.1", udp_port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as honest:
                honest.settimeout(5)
                honest.sendto(b"honest", ("127.0.0.1", udp_port))
                assert honest.recv(100) == b"honest"
            echo_round_trip(tcp_port).close()
            evicted = fwd.wait_event("udp-session")[0]
            assert evicted["reason"] == "evicted: longest idle, all rules at the descriptor budget"
    finally:
        servers.loop.call_soon_threadsafe(udp.close)


def test_a_target_that_refuses_at_start_gets_one_warning_and_forwarding_goes_on(
    servers: ServerThread,
) -> None:
    up, down = servers.serve(echo), free_port()
    with forwarder(f"0=127.0.0.1:{down}", f"0=127.0.0.1:{up}") as fwd:
        [line] = fwd.wait_event("target-down")
        assert (line["level"], line["target"], line["msg"]) == (
            "warning",
            f"127.0.0.1:{down}",
            f"target 127.0.0.1:{down} refuses connections now; forwarding anyway",
        )
        echo_round_trip(fwd.ports[1]).close()  # the other rule serves meanwhile
        fwd.signal(signal.SIGTERM)
        assert fwd.wait() == 0
    assert len([e for e in fwd.events if e["event"] == "target-down"]) == 1  # not the up one
