"""The UDP part of `make bench`: request/response rate through each forwarder.

A 64-byte datagram, its echo, the next one: 8 client processes at once (threads would
measure the client's GIL) and one sequential client. Peers: a direct path, socat, nginx
stream (Debian's nginx-light + libnginx-mod-stream), the stdlib loop's floor (a bare
relay, tests/floor_relay.py) and wslnet on both loops (the asyncio loop is the Windows
path), plus wslnet from other trees (`--also`).

Each peer does the same job as its users would set it up for a session per client: a
client keeps its upstream socket for as long as it talks. For nginx that means no
`proxy_responses` (with `proxy_responses 1` nginx ends the session after each reply and
opens a new upstream socket for the next request: other work than ours) and a
`proxy_timeout` as long as wslnet's default UDP timeout; one worker, as wslnet has one
loop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench_table import Results, ratio_table

PY = sys.executable
CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
NGINX_STREAM = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
NGINX_TIMEOUT = "60s"  # wslnet's default UDP session timeout (--udp-timeout 60)

UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data, addr)
"""

# Prints how many answers came back in the time given, and how many were lost: a lost
# datagram counts nothing and costs the 0.2 s timeout, as it would cost a real client.
# A late answer (after its timeout) is read and dropped before the next request.
UDP_CLIENT = r"""
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.settimeout(0.2)
payload, done, lost, end = b"x" * 64, 0, 0, time.perf_counter() + seconds
while time.perf_counter() < end:
    s.send(payload)
    try:
        if s.recv(2048) == payload:
            done += 1
    except (TimeoutError, socket.timeout):
        lost += 1
print(done, lost)
"""


def missing() -> str | None:
    if shutil.which("nginx") is None or not NGINX_STREAM.exists():
        return "nginx-light and libnginx-mod-stream"
    return None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.connect(("127.0.0.1", port))
        try:
            s.send(b"hi")
            return s.recv(16) == b"hi"
        except OSError:
            return False


def _wait_answer(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on udp/{port}")


@dataclass
class UdpPeer:
    port: int
    argv: list[str]  # empty: no forwarder (the direct path)
    config: str  # how it is set up, as the bench output says
    env: dict[str, str] | None = None


def _peers(echo: int, tmp: Path, also: dict[str, Path]) -> dict[str, UdpPeer]:
    peers = {"direct": UdpPeer(echo, [], "no forwarder: the clients talk to the echo server")}
    port = _free_udp_port()
    argv = ["socat", f"UDP-LISTEN:{port},fork,reuseaddr", f"UDP:127.0.0.1:{echo}"]
    config = "socat UDP-LISTEN:P,fork,reuseaddr UDP:127.0.0.1:E (a process per client)"
    peers["socat"] = UdpPeer(port, argv, config)
    port = _free_udp_port()
    conf = tmp / "nginx-udp.conf"
    server = (
        f"listen 127.0.0.1:{port} udp; proxy_pass 127.0.0.1:{echo}; proxy_timeout {NGINX_TIMEOUT};"
    )
    conf.write_text(
        f"load_module {NGINX_STREAM};\ndaemon off;\nmaster_process off;\nworker_processes 1;\n"
        f"pid {tmp}/nginx.pid;\nerror_log stderr crit;\nevents {{ worker_connections 4096; }}\n"
        f"stream {{ server {{ {server} }} }}\n"
    )
    peers["nginx-stream"] = UdpPeer(
        port,
        ["nginx", "-p", str(tmp), "-c", str(conf)],
        f"nginx {_nginx_version()} stream, worker_processes 1, master_process off; "
        f"server {{ listen 127.0.0.1:P udp; proxy_pass 127.0.0.1:E; proxy_timeout "
        f"{NGINX_TIMEOUT}; }} (a session per client, kept while it talks: no proxy_responses)",
    )
    port = _free_udp_port()
    floor = [PY, str(Path(__file__).with_name("floor_relay.py")), f"udp/{port}={echo}"]
    peers["asyncio-floor"] = UdpPeer(
        port, floor, "tests/floor_relay.py: a bare relay on the stdlib loop, a socket per client"
    )
    trees: dict[str, Path | None] = {"wslnet": None, **also}
    for tree, path in trees.items():
        env = None if path is None else {**os.environ, "PYTHONPATH": str(path)}
        for loop in ("asyncio", "uvloop"):
            port = _free_udp_port()
            argv = [PY, "-m", "wslnet", "forward", "-q", "--loop", loop]
            argv.append(f"udp/{port}=127.0.0.1:{echo}")
            where = "" if path is None else f" (the tree at {path})"
            config = f"wslnet forward -q --loop {loop} udp/P=127.0.0.1:E{where}; UDP timeout 60 s"
            peers[f"{tree}-udp-{loop}"] = UdpPeer(port, argv, config, env)
    return peers


def _nginx_version() -> str:
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return out.stderr.strip().rpartition("/")[2] or "?"


def _cpu(pids: list[int]) -> float:
    """utime+stime of these processes, their children (socat forks one per client) and
    the children they reaped."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / CLK
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            total += _cpu(children)
    return total


def _rate(port: int, clients: int, seconds: float) -> tuple[float, int]:
    """(answers per second, datagrams lost) of `clients` processes at once."""
    procs = [
        subprocess.Popen([PY, "-c", UDP_CLIENT, str(port), str(seconds)], stdout=subprocess.PIPE)
        for _ in range(clients)
    ]
    counts = [p.communicate(timeout=seconds + 30)[0].split() for p in procs]
    return sum(int(c[0]) for c in counts) / seconds, sum(int(c[1]) for c in counts)


def configs(echo: int = 0, also: dict[str, Path] | None = None) -> dict[str, str]:
    """Each peer's configuration, as `run` sets it up (ports shown as P and E)."""
    with tempfile.TemporaryDirectory() as tmp:
        return {n: p.config for n, p in _peers(echo, Path(tmp), also or {}).items()}


Rounds = dict[str, dict[str, list[float]]]  # {peer: {"par8"/"seq": rate of each round}}


def run(
    tmp: Path,
    seconds: float = 3.0,
    rounds: int = 3,
    also: dict[str, Path] | None = None,
    by_round: Rounds | None = None,
) -> dict[str, dict[str, float | None]]:
    """{peer: {"par8": answers/s with 8 clients, "seq": with one, "lost": datagrams lost
    in all rounds}}, medians of rounds taken peer after peer in turn. `by_round`, if
    given, receives each round's rates."""
    echo = _free_udp_port()
    server = subprocess.Popen([PY, "-c", UDP_ECHO, str(echo)])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _wait_answer(echo)
        peers = _peers(echo, tmp, also or {})
        pids: dict[str, list[int]] = {name: [] for name in peers}
        for name, peer in peers.items():
            if peer.argv:
                # A session of its own: socat forks a child per client, killed with it.
                procs.append(
                    subprocess.Popen(
                        peer.argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                        env=peer.env,
                    )
                )
                pids[name] = [procs[-1].pid]
                _wait_answer(peer.port)
        got: dict[str, dict[str, list[float]]] = {n: {"par8": [], "seq": []} for n in peers}
        lost = dict.fromkeys(peers, 0)
        cpu, answers = dict.fromkeys(peers, 0.0), dict.fromkeys(peers, 0.0)
        names = list(peers)
        for rnd in range(rounds):
            for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
                peer = peers[name]
                print(f"bench: udp round {rnd + 1}: {name}", file=sys.stderr)
                for kind, clients in (("par8", 8), ("seq", 1)):
                    cpu0 = _cpu(pids[name])
                    rate, gone = _rate(peer.port, clients, seconds)
                    cpu[name] += _cpu(pids[name]) - cpu0
                    answers[name] += rate * seconds
                    got[name][kind].append(rate)
                    lost[name] += gone
        if by_round is not None:
            by_round.update(got)
        return {
            n: {
                **{k: sorted(v)[len(v) // 2] for k, v in kinds.items()},
                "lost": lost[n],
                "cpu_us": cpu[n] / answers[n] * 1e6 if pids[n] and answers[n] else None,
            }
            for n, kinds in got.items()
        }
    finally:
        for proc in procs:
            if sys.platform != "win32":  # make bench runs on Linux; mypy reads it for Windows
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.kill()
        server.wait()


def _round_by_round(
    this: dict[str, list[float]] | None, other: dict[str, list[float]] | None
) -> str:
    """Each round's ratio (both trees under the same load), as a median and its range."""
    if not this or not other:
        return ""
    parts = []
    for key, what in (("par8", "8 clients"), ("seq", "sequential")):
        ratios = sorted(a / b for a, b in zip(this[key], other[key], strict=True) if b)
        if ratios:
            parts.append(
                f"{what} median {statistics.median(ratios):.2f}x, "
                f"{ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(ratios)} rounds"
            )
    return "; round by round: " + ", ".join(parts) if parts else ""


def render(results: dict[str, dict[str, float | None]]) -> str:
    metrics = [
        ("par8", "8 client processes", "{:.0f}"),
        ("seq", "1 sequential client", "{:.0f}"),
        ("cpu_us", "forwarder CPU us per answer", "{:.1f}"),
        ("lost", "datagrams lost (all rounds)", "{:.0f}"),
    ]
    rows: Results = {peer: dict(row) for peer, row in results.items()}
    return ratio_table("UDP 64B request/response per s", metrics, rows, ["socat", "nginx-stream"])


def targets(
    results: dict[str, dict[str, float | None]], by_round: Rounds | None = None
) -> list[str]:
    def get(peer: str, kind: str) -> float:
        value = results[peer][kind]
        return float(value) if value is not None else float("nan")

    lines = []
    for kind, clients in (("par8", "8 clients"), ("seq", "one sequential client")):
        nginx = get("nginx-stream", kind)
        for loop, k in (("asyncio", 0.9), ("uvloop", 1.0)):
            ratio = get(f"wslnet-udp-{loop}", kind) / nginx
            name = f"UDP, {loop} loop, {clients}: >= {k}x nginx stream"
            lines.append(f"target {'met ' if ratio >= k else 'MISSED'}: {name} ({ratio:.2f}x)")
        floor = get("asyncio-floor", kind)
        lines.append(
            f"for scale: the stdlib loop's floor (asyncio-floor, a bare UDP relay), {clients}: "
            f"{floor / nginx:.2f}x nginx stream; wslnet on the asyncio loop "
            f"{get('wslnet-udp-asyncio', kind) / floor:.2f}x the floor"
        )
    for peer in results:  # --also trees: the same loop there, in the same rounds
        tree, _, loop = peer.rpartition("-udp-")
        if tree and tree != "wslnet" and f"wslnet-udp-{loop}" in results:
            this = f"wslnet-udp-{loop}"
            lines.append(
                f"change: this tree vs {tree}, {loop} loop: "
                + ", ".join(
                    f"{what} {get(this, key) / get(peer, key):.2f}x"
                    for key, what in (("par8", "8 clients"), ("seq", "sequential"),
                                      ("cpu_us", "CPU per answer"))
                )
                + _round_by_round((by_round or {}).get(this), (by_round or {}).get(peer))
            )  # fmt: skip
    return lines
