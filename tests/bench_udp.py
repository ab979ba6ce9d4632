"""The UDP part of `make bench`: request/response rate through each forwarder.

A 64-byte datagram, its echo, the next one: 8 client processes at once (threads would
measure the client's GIL) and one sequential client. Peers: a direct path, socat, nginx
stream (Debian's nginx-light + libnginx-mod-stream), the stdlib loop's floor (a bare
relay, tests/floor_relay.py) and wslnet on both loops (the asyncio loop is the Windows
path)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.bench_table import Results, ratio_table

PY = sys.executable
NGINX_STREAM = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data, addr)
"""

# Prints how many answers came back in the time given; a datagram lost counts nothing
# and costs the 0.2 s timeout, as it would cost a real client.
UDP_CLIENT = r"""
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.settimeout(0.2)
payload, done, end = b"x" * 64, 0, time.perf_counter() + seconds
while time.perf_counter() < end:
    s.send(payload)
    try:
        if s.recv(2048) == payload:
            done += 1
    except (TimeoutError, socket.timeout):
        pass
print(done)
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


def _peers(echo: int, tmp: Path) -> dict[str, tuple[int, list[str]]]:
    peers: dict[str, tuple[int, list[str]]] = {"direct": (echo, [])}
    port = _free_udp_port()
    peers["socat"] = (port, ["socat", f"UDP-LISTEN:{port},fork,reuseaddr", f"UDP:127.0.0.1:{echo}"])
    port = _free_udp_port()
    conf = tmp / "nginx-udp.conf"
    conf.write_text(
        f"load_module {NGINX_STREAM};\ndaemon off;\nmaster_process off;\nworker_processes 1;\n"
        f"pid {tmp}/nginx.pid;\nerror_log stderr crit;\nevents {{ worker_connections 4096; }}\n"
        f"stream {{ server {{ listen 127.0.0.1:{port} udp; proxy_pass 127.0.0.1:{echo};\n"
        "  proxy_responses 1; proxy_timeout 10s; } }\n"
    )
    peers["nginx-stream"] = (port, ["nginx", "-p", str(tmp), "-c", str(conf)])
    port = _free_udp_port()
    floor = [PY, str(Path(__file__).with_name("floor_relay.py")), f"udp/{port}={echo}"]
    peers["asyncio-floor"] = (port, floor)
    for loop in ("asyncio", "uvloop"):
        port = _free_udp_port()
        argv = [PY, "-m", "wslnet", "forward", "-q", "--loop", loop, f"udp/{port}=127.0.0.1:{echo}"]
        peers[f"wslnet-udp-{loop}"] = (port, argv)
    return peers


def _rate(port: int, clients: int, seconds: float) -> float:
    procs = [
        subprocess.Popen([PY, "-c", UDP_CLIENT, str(port), str(seconds)], stdout=subprocess.PIPE)
        for _ in range(clients)
    ]
    return sum(int(p.communicate(timeout=seconds + 30)[0]) for p in procs) / seconds


def run(tmp: Path, seconds: float = 3.0, rounds: int = 3) -> dict[str, dict[str, float]]:
    """{peer: {"par8": answers/s with 8 clients, "seq": with one}}, medians of rounds
    taken peer after peer in turn."""
    echo = _free_udp_port()
    server = subprocess.Popen([PY, "-c", UDP_ECHO, str(echo)])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _wait_answer(echo)
        peers = _peers(echo, tmp)
        for port, argv in peers.values():
            if argv:
                # A session of its own: socat forks a child per client, killed with it.
                procs.append(
                    subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                _wait_answer(port)
        got: dict[str, dict[str, list[float]]] = {n: {"par8": [], "seq": []} for n in peers}
        for rnd in range(rounds):
            for name, (port, _) in peers.items():
                print(f"bench: udp round {rnd + 1}: {name}", file=sys.stderr)
                got[name]["par8"].append(_rate(port, 8, seconds))
                got[name]["seq"].append(_rate(port, 1, seconds))
        return {
            n: {k: sorted(v)[len(v) // 2] for k, v in kinds.items()} for n, kinds in got.items()
        }
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.kill()
        server.wait()


def render(results: dict[str, dict[str, float]]) -> str:
    metrics = [("par8", "8 client processes", "{:.0f}"), ("seq", "1 sequential client", "{:.0f}")]
    rows: Results = {peer: dict(row) for peer, row in results.items()}
    return ratio_table("UDP 64B request/response per s", metrics, rows, ["socat", "nginx-stream"])


def targets(results: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for kind, clients in (("par8", "8 clients"), ("seq", "one sequential client")):
        nginx = results["nginx-stream"][kind]
        for loop, k in (("asyncio", 0.9), ("uvloop", 1.0)):
            met = results[f"wslnet-udp-{loop}"][kind] >= k * nginx
            name = f"UDP, {loop} loop, {clients}: >= {k}x nginx stream"
            lines.append(f"target {'met ' if met else 'MISSED'}: {name}")
        floor = results["asyncio-floor"][kind]
        lines.append(
            f"for scale: the stdlib loop's floor (asyncio-floor, a bare UDP relay), {clients}: "
            f"{floor / nginx:.2f}x nginx stream; wslnet on the asyncio loop "
            f"{results['wslnet-udp-asyncio'][kind] / floor:.2f}x the floor"
        )
    return lines
