"""`make soak`: one forwarder under ten minutes of mixed, hostile traffic in the lab.

The forwarder runs in the lab's Windows namespace in front of an echo server in the WSL
namespace (a `wsl` target through the fake wsl.exe, and a config-file rule). Clients pick
at random: exchanges of random size checked by digest, half-closes, resets mid-stream,
bursts of concurrent connections; meanwhile the target restarts, the VM changes address
and the config file is rewritten. Beside it, a UDP rule takes a flood of datagrams from
ever new source ports (bounded), under a descriptor limit (--nofile, 1,024 as in issue
20), while a probe checks twice a second that a TCP rule and the API still answer. At the
end: every exchange that should have worked did, the probes never failed, descriptors
are back where they started, RSS stayed bounded, and the forwarder's byte counters are
at least what the clients moved. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import (
    ForwarderProcess,
    ServerThread,
    echo,
    echo_round_trip,
    listening_socket,
)
from tests.lab import WSL_IP, Lab

MOVED_IP = "198.18.5.21"
TOKEN = "soak-token"


class Target:
    """The echo server in the VM; it can be stopped and started on the same port."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.servers = ServerThread()
        self.port = 0
        self.up = False
        self.start()

    def start(self) -> None:
        with self.lab.inside(self.lab.wsl):
            sock = listening_socket("0.0.0.0", self.port)
        self.port = self.servers.serve(echo, sock)
        self.up = True

    def stop(self) -> None:
        self.servers.stop_serving()
        self.up = False


class UdpEcho:
    """A UDP echo server in the VM, in a thread of its own until closed."""

    def __init__(self, lab: Lab) -> None:
        with lab.inside(lab.wsl):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
                self.sock.sendto(data, peer)
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


class Flood:
    """Datagrams to a UDP rule, each from a source port never used before (a new socket
    each), in rounds, until stopped or `limit` datagrams were sent."""

    ROUND = 256  # source ports per round, then a pause: about 1,000 a second

    def __init__(self, lab: Lab, port: int, limit: int) -> None:
        self.lab, self.port, self.limit = lab, port, limit
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.lab.inside(self.lab.win):
            while not self.stop.is_set() and self.sent < self.limit:
                for _ in range(min(self.ROUND, self.limit - self.sent)):
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        try:
                            s.sendto(b"flood", ("127.0.0.1", self.port))
                        except OSError:
                            continue
                    self.sent += 1
                self.stop.wait(0.25)


class Probe:
    """Twice a second: a small echo through a TCP rule whose target never goes away, the
    API's /v1/status, and one UDP exchange as an honest client would make it."""

    def __init__(self, lab: Lab, tcp_port: int, udp_port: int, api_port: int) -> None:
        self.lab, self.tcp, self.udp, self.api = lab, tcp_port, udp_port, api_port
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.lab.inside(self.lab.win):
            while not self.stop.wait(0.5):
                self._one("tcp", self._tcp)
                self._one("api", lambda: status_here(self.api))
                self._one("udp", self._udp)

    def _one(self, name: str, probe: Callable[[], object]) -> None:
        try:
            probe()
            self.counts[f"{name}-ok"] += 1
        except (OSError, AssertionError, ValueError):
            self.counts[f"{name}-failed"] += 1

    def _tcp(self) -> None:
        echo_round_trip(self.tcp).close()

    def _udp(self) -> None:
        data = random.randbytes(32)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(data, ("127.0.0.1", self.udp))
            assert s.recv(100) == data


def readdress(lab: Lab, address: str) -> None:
    lab.sh(
        lab.wsl,
        f"ip addr flush dev eth0 && ip addr add {address}/20 dev eth0"
        " && ip route replace default via 198.18.0.1",
    )


def client_socket(lab: Lab) -> socket.socket:
    with lab.inside(lab.win):
        sock = socket.socket()
    sock.settimeout(10)
    return sock


def exchange(lab: Lab, port: int, size: int, half_close: bool) -> int:
    """Sends `size` random bytes and checks the echo by digest; returns bytes moved."""
    data = random.randbytes(size)
    with client_socket(lab) as s:
        s.connect(("127.0.0.1", port))
        got = hashlib.sha256()
        n = 0

        def reader() -> None:
            nonlocal n
            while n < size:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got.update(chunk)
                n += len(chunk)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        t.join(30)
        if n != size or got.digest() != hashlib.sha256(data).digest():
            raise AssertionError(f"echo of {size} bytes came back as {n} bytes, or changed")
        if half_close:
            assert s.recv(1) == b""  # the FIN came back through the forwarder
    return size


def reset_mid_stream(lab: Lab, port: int) -> None:
    s = client_socket(lab)
    s.connect(("127.0.0.1", port))
    s.sendall(random.randbytes(10_000))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def burst(lab: Lab, port: int, count: int) -> int:
    moved = 0
    lock = threading.Lock()

    def one() -> None:
        nonlocal moved
        m = exchange(lab, port, random.randint(1, 50_000), half_close=True)
        with lock:
            moved += m

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return moved


def status(lab: Lab, api_port: int) -> dict[str, object]:
    with lab.inside(lab.win):
        return status_here(api_port)


def status_here(api_port: int) -> dict[str, object]:
    """/v1/status from this thread's namespace."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/v1/status",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        doc: dict[str, object] = json.loads(resp.read())
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument(
        "--nofile", type=int, default=1024, help="the forwarder's descriptor limit (0: as is)"
    )
    ap.add_argument(
        "--flood", type=int, default=500_000, help="at most this many UDP flood datagrams"
    )
    args = ap.parse_args()
    random.seed(args.seed)
    lab = Lab()
    tmp = Path(tempfile.mkdtemp(prefix="wslnet-soak-"))
    target = Target(lab)
    udp_echo = UdpEcho(lab)
    steady_servers = ServerThread()  # the probe's TCP target: always up
    with lab.inside(lab.win):
        steady = steady_servers.serve(echo, listening_socket("127.0.0.1"))
    conf = tmp / "forward.toml"
    rule = f'[[forward]]\nlisten = "127.0.0.1:0"\ntarget = "wsl:{target.port}"\n'
    conf.write_text(rule)
    env = {**lab.fake_wsl_exe(tmp), "WSLNET_API_TOKEN": TOKEN}
    with lab.inside(lab.win):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        api_port = probe.getsockname()[1]
        probe.close()
    limit = ("prlimit", f"--nofile={args.nofile}:{args.nofile}", "--") if args.nofile else ()
    fwd = ForwarderProcess(
        f"0={target.port}", f"udp/0={udp_echo.port}", f"127.0.0.1:0=127.0.0.1:{steady}",
        "--config", str(conf), "--api", str(api_port),
        "--resolve-interval", "1", "--connect-timeout", "2", "--udp-timeout", "5",
        prefix=(*lab.prefix(lab.win), *limit), env=env,
    )  # fmt: skip
    flood: Flood | None = None
    prober: Probe | None = None
    counts: Counter[str] = Counter()
    moved = 0
    try:
        fwd.started()
        port, udp_port, probe_port = fwd.ports[:3]
        time.sleep(0.5)
        fds0, rss0 = fwd.fd_count(), fwd.rss()
        t0 = time.monotonic()
        next_event = t0 + 20
        address = WSL_IP
        print(f"soak: seed {args.seed}, {args.seconds:.0f} s, fds {fds0}, rss {rss0 >> 20} MiB")
        flood = Flood(lab, udp_port, args.flood)
        prober = Probe(lab, probe_port, udp_port, api_port)
        flood.thread.start()
        prober.thread.start()
        while time.monotonic() - t0 < args.seconds:
            if time.monotonic() >= next_event:
                event = random.choice(["restart", "readdress", "reload"])
                counts[event] += 1
                if event == "restart":
                    target.stop()
                    time.sleep(random.uniform(0.2, 2))
                    target.start()
                elif event == "readdress":
                    address = MOVED_IP if address == WSL_IP else WSL_IP
                    readdress(lab, address)
                    time.sleep(1.2)  # --resolve-interval: the cached address expires
                else:  # a UDP rule comes or goes; the TCP rule stays
                    udp = rule.replace("[[forward]]\n", '[[forward]]\nproto = "udp"\n')
                    conf.write_text(rule + random.choice(["", udp]))
                    time.sleep(1.2)
                next_event = time.monotonic() + random.uniform(10, 30)
                continue
            kind = random.choices(["exchange", "half", "reset", "burst"], [50, 25, 15, 10])[0]
            try:
                if kind == "exchange":
                    moved += exchange(lab, port, random.randint(1, 2_000_000), False)
                elif kind == "half":
                    moved += exchange(lab, port, random.randint(1, 100_000), True)
                elif kind == "reset":
                    reset_mid_stream(lab, port)
                else:
                    moved += burst(lab, port, random.randint(10, 60))
                counts[kind] += 1
            except (OSError, AssertionError) as exc:
                counts[f"{kind}-failed"] += 1
                if not isinstance(exc, OSError):
                    print(f"soak: {kind}: {exc}", file=sys.stderr)
                    counts["corrupt"] += 1
        flood.stop.set()
        prober.stop.set()
        flood.thread.join(10)
        prober.thread.join(20)
        time.sleep(3)  # open connections finish; resets are counted
        deadline = time.monotonic() + 15
        while fwd.fd_count() > fds0 and time.monotonic() < deadline:
            time.sleep(0.2)
        fds1, rss1 = fwd.fd_count(), fwd.rss()
        doc = status(lab, api_port)
        rules = doc["rules"]
        assert isinstance(rules, list)
        udp_rule = next(r for r in rules if r["proto"] == "udp" and r["origin"] == "cli")
        forwarded = sum(
            int(r["bytes_up"])
            for r in rules
            if r["origin"] == "cli" and str(r["target"]).endswith(f":{target.port}")
        )
        fwd.signal(signal.SIGTERM)
        try:
            rc = fwd.wait(20)
        except Exception:
            print(fwd.log_text()[-3000:], file=sys.stderr)
            raise
    finally:
        for thread in (flood, prober):
            if thread is not None:
                thread.stop.set()
        fwd.stop()
        target.servers.close()
        steady_servers.close()
        udp_echo.close()
        readdress(lab, WSL_IP)
        lab.destroy()
    failures = []
    if counts["corrupt"]:
        failures.append(f"{counts['corrupt']} exchanges lost or changed bytes")
    if fds1 > fds0:
        failures.append(f"descriptors: {fds0} at start, {fds1} at the end")
    if rss1 > rss0 + (64 << 20):
        failures.append(f"RSS grew from {rss0 >> 20} to {rss1 >> 20} MiB")
    if forwarded < moved:
        failures.append(f"forwarded {forwarded} bytes up, clients sent {moved}")
    if rc != 0:
        failures.append(f"exit code {rc} after SIGTERM")
    pc = prober.counts
    for name, what in (("tcp", "a TCP rule"), ("api", "the API")):
        if pc[f"{name}-failed"] or not pc[f"{name}-ok"]:
            failures.append(f"{what} failed {pc[f'{name}-failed']} probes during the UDP flood")
    ok = sum(counts[k] for k in ("exchange", "half", "burst"))
    failed = sum(v for k, v in counts.items() if k.endswith("-failed"))
    print(f"| soak ({args.seconds:.0f} s, seed {args.seed}) | |")
    print("|---|---|")
    print(f"| exchanges ok (digest checked) / failed (target down) | {ok} / {failed} |")
    print(f"| resets mid-stream | {counts['reset']} |")
    print(
        f"| target restarts / VM re-addressings / reloads | {counts['restart']} / "
        f"{counts['readdress']} / {counts['reload']} |"
    )
    print(f"| bytes sent by clients (ok exchanges) / forwarded up | {moved} / {forwarded} |")
    print(f"| descriptors start / end | {fds0} / {fds1} |")
    print(f"| RSS start / end (MiB) | {rss0 >> 20} / {rss1 >> 20} |")
    print(f"| exit code after SIGTERM | {rc} |")
    print(f"| UDP flood: datagrams, each from a new source port (--nofile {args.nofile}) | "
          f"{flood.sent} |")  # fmt: skip
    print(
        f"| UDP rule: sessions admitted / refused at the cap | {udp_rule['connections_total']}"
        f" / {udp_rule['rejected']} |"
    )
    for name, what in (("tcp", "TCP rule"), ("api", "API /v1/status"), ("udp", "UDP echo")):
        print(f"| probes during the flood: {what} ok / failed | {pc[name + '-ok']} / "
              f"{pc[name + '-failed']} |")  # fmt: skip
    for f in failures:
        print(f"soak FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
