"""`wslnet check`, `ip` and `listeners` inside the lab's WSL VM (tests/lab.py, tests/jail.py)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import jail, scenarios
from tests.helpers import assert_schema
from tests.lab import WIN_WSL_IP, WSL_IP, Lab

WSL2_KERNEL = scenarios.WSL2_KERNEL

pytestmark = pytest.mark.lab  # end to end: real processes (and the lab)


@dataclass
class Vm:
    lab: Lab
    files: dict[str, Path]
    ports: dict[str, int]
    tmp: Path

    def run(
        self,
        *args: str,
        resolv_ns: str | None = None,
        hosts: str | None = None,
        container: bool = False,
    ) -> jail.subprocess.CompletedProcess[str]:  # type: ignore[name-defined]
        files = dict(self.files)
        if resolv_ns is not None:
            path = self.tmp / f"resolv-{resolv_ns}.conf"
            path.write_text(scenarios.resolv(resolv_ns))
            files["/etc/resolv.conf"] = path
        if hosts is not None:
            path = self.tmp / f"hosts-{abs(hash(hosts))}"
            path.write_text(hosts)
            files["/etc/hosts"] = path
        return jail.run(
            self.lab.prefix(self.lab.wsl),
            jail.wslnet(*args),
            files=files,
            dirs=["/run/WSL"],
            env={"WSL_DISTRO_NAME": "Ubuntu"},
            touch=["/.dockerenv"] if container else None,
        )

    def json(
        self, *args: str, resolv_ns: str | None = None, hosts: str | None = None,
        container: bool = False,
    ) -> Any:  # fmt: skip
        res = self.run(*args, "--json", resolv_ns=resolv_ns, hosts=hosts, container=container)
        assert res.returncode in (0, 1), res.stderr
        doc = json.loads(res.stdout)
        assert_schema(doc, args[0])  # check, ip or listeners
        return doc


def bound(lab: Lab, ns: str, family: int, kind: int, host: str) -> socket.socket:
    with lab.inside(ns):
        sock = socket.socket(family, kind)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((host, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    return sock


@pytest.fixture(scope="module")
def vm(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    tmp = tmp_path_factory.mktemp("vm")
    osrelease = tmp / "osrelease"
    osrelease.write_text(WSL2_KERNEL)
    resolv = tmp / "resolv.conf"
    resolv.write_text(scenarios.resolv(scenarios.DNS_TUNNEL))
    # DNS tunnelling puts its address on lo (shared wsl-networking.md section 2).
    lab.sh(lab.wsl, f"ip addr add {scenarios.DNS_TUNNEL}/32 dev lo")
    t, u = socket.SOCK_STREAM, socket.SOCK_DGRAM
    socks = {
        "loopback": bound(lab, lab.wsl, socket.AF_INET, t, "127.0.0.1"),
        "any": bound(lab, lab.wsl, socket.AF_INET, t, "0.0.0.0"),
        "any6": bound(lab, lab.wsl, socket.AF_INET6, t, "::"),
        "eth0": bound(lab, lab.wsl, socket.AF_INET, t, WSL_IP),
        "other127": bound(lab, lab.wsl, socket.AF_INET, t, "127.0.0.2"),
        "udp": bound(lab, lab.wsl, socket.AF_INET, u, "0.0.0.0"),
    }
    ports = {name: s.getsockname()[1] for name, s in socks.items()}
    try:
        yield Vm(
            lab, {"/proc/sys/kernel/osrelease": osrelease, "/etc/resolv.conf": resolv}, ports, tmp
        )
    finally:
        for s in socks.values():
            s.close()
        lab.sh(lab.wsl, f"ip addr del {scenarios.DNS_TUNNEL}/32 dev lo", check=False)


def test_ip_host_prints_the_default_gateway_not_the_dns_tunnel(vm: Vm) -> None:
    res = vm.run("ip", "host")
    assert (res.returncode, res.stdout, res.stderr) == (0, f"{WIN_WSL_IP}\n", "")


def test_ip_host_json_explains_every_candidate(vm: Vm) -> None:
    doc = vm.json("ip", "host")
    assert doc["address"] == WIN_WSL_IP and doc["source"] == "default gateway"
    verdicts = {c["address"]: c for c in doc["candidates"]}
    tunnel = verdicts[scenarios.DNS_TUNNEL]
    assert tunnel["usable"] is False
    assert "DNS tunnel address on lo, not the host" in tunnel["verdict"]


def test_ip_wsl_prints_the_vm_address(vm: Vm) -> None:
    assert vm.run("ip", "wsl").stdout == f"{WSL_IP}\n"


def test_each_listener_gets_the_right_verdict_and_fix(vm: Vm) -> None:
    rows = vm.json("listeners")["listeners"]
    by_port = {(r["proto"], r["port"]): r for r in rows}
    p = vm.ports
    expect = {
        ("tcp", p["loopback"]): ("yes", None),
        ("tcp", p["any"]): ("yes", None),
        ("tcp", p["any6"]): ("ipv6-only", f"bind 0.0.0.0:{p['any6']}"),
        ("tcp", p["eth0"]): ("no", f"bind 0.0.0.0:{p['eth0']}; or forward it from Windows"),
        ("tcp", p["other127"]): ("no", f"bind 127.0.0.1:{p['other127']}"),
        ("udp", p["udp"]): ("no", "never forwards UDP"),
    }
    for key, (verdict, fix) in expect.items():
        row = by_port[key]
        assert row["windows_localhost"] == verdict, row
        if fix is None:
            assert row["fix"] is None
        else:
            assert fix in row["fix"], row
    assert by_port[("tcp", p["eth0"])]["vm_address"] is True
    assert by_port[("tcp", p["loopback"])]["vm_address"] is False
    assert "#10206" in by_port[("tcp", p["eth0"])]["reason"]


def test_check_port_focuses_on_one_listener(vm: Vm) -> None:
    doc = vm.json("check", "listeners", "--port", str(vm.ports["eth0"]))
    (finding,) = doc["findings"]
    assert finding["status"] == "warn"
    # The durable form: its `wsl` target follows the VM's address (never a pinned one).
    assert finding["fix"]["commands"] == [f"wslnet forward {vm.ports['eth0']}"]
    assert finding["fix"]["where"] == "windows"
    assert by_port_fix(vm)[vm.ports["eth0"]] == [f"wslnet forward {vm.ports['eth0']}"]


def by_port_fix(vm: Vm) -> dict[int, list[str]]:
    rows = vm.json("listeners")["listeners"]
    return {r["port"]: r["fix_commands"] for r in rows if r["proto"] == "tcp"}


def test_host_port_dropped_by_the_firewall_is_filtered_with_the_firewall_fix(vm: Vm) -> None:
    lab = vm.lab
    with lab.inside(lab.win):
        closed = socket.socket()
    closed.bind((WIN_WSL_IP, 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the kernel answers with a reset
    dropped = closed_port + 1 if closed_port < 65535 else closed_port - 1
    lab.firewall(lab.win, f"tcp dport {dropped} drop")
    try:
        res = vm.run(
            "check",
            "host.reach",
            "--host-port",
            str(dropped),
            "--host-port",
            str(closed_port),
            "--json",
        )
    finally:
        lab.flush_firewall(lab.win)
    assert res.returncode == 1  # failures found
    doc = json.loads(res.stdout)
    states = {f["evidence"]["port"]: f for f in doc["findings"]}
    assert states[dropped]["evidence"]["state"] == "filtered"
    assert 'InterfaceAlias "vEthernet (WSL)"' in states[dropped]["fix"]["commands"][0]
    assert states[closed_port]["evidence"]["state"] == "refused"
    assert "0.0.0.0" in states[closed_port]["fix"]["text"]


def test_host_port_with_a_listener_is_open(vm: Vm) -> None:
    lab = vm.lab
    srv = bound(lab, lab.win, socket.AF_INET, socket.SOCK_STREAM, WIN_WSL_IP)
    try:
        doc = vm.json("check", "host.reach", "--host-port", str(srv.getsockname()[1]))
    finally:
        srv.close()
    (finding,) = doc["findings"]
    assert finding["status"] == "ok" and finding["evidence"]["state"] == "open"


def test_a_live_dns_server_is_found_alive(vm: Vm) -> None:
    with scenarios.dns_server(vm.lab, vm.lab.win, WIN_WSL_IP):
        doc = vm.json("check", "dns", resolv_ns=WIN_WSL_IP)
    (finding,) = doc["findings"]
    assert finding["status"] == "ok", finding
    assert "NXDOMAIN" in finding["title"]


def test_a_dead_dns_server_is_a_failure_with_fixes(vm: Vm) -> None:
    res = vm.run("check", "dns", resolv_ns=WIN_WSL_IP)
    assert res.returncode == 1
    assert "✗ Resolver 198.18.0.1 does not answer" in res.stdout
    assert "dnsTunneling=true" in res.stdout


def test_mirrored_fingerprint_gives_mirrored_mode_and_localhost(vm: Vm) -> None:
    lab = vm.lab
    lab.sh(
        lab.wsl,
        "ip link add loopback0 type veth peer name lb0peer"
        " && ip rule add pref 1 ipproto tcp lookup 127",
    )
    try:
        env = vm.json("check", "environment")["environment"]
        host = vm.run("ip", "host").stdout
    finally:
        lab.sh(
            lab.wsl, "ip rule del pref 1 ipproto tcp lookup 127; ip link del loopback0", check=False
        )
    assert env["networking_mode"] == "mirrored"
    assert host == "127.0.0.1\n"


def test_without_wsl_markers_it_is_linux_and_wsl_checks_skip(lab: Lab) -> None:
    res = jail.run(
        lab.prefix(lab.wsl), jail.wslnet("check", "--json", "environment", "config", "host.address")
    )
    doc = json.loads(res.stdout)
    assert doc["environment"]["kind"] == "linux"
    skipped = {f["id"]: f for f in doc["findings"] if f["status"] == "skip"}
    assert set(skipped) == {"config.wslconfig", "config.wslconf", "config.mode", "host.address"}
    assert "not running in WSL" in skipped["host.address"]["detail"]
    assert res.returncode == 0


def test_check_in_the_vm_reads_clearly_for_people(vm: Vm) -> None:
    res = vm.run("check")
    out = res.stdout
    assert "• Running in WSL2, nat networking" in out
    assert f"✓ Windows host is {WIN_WSL_IP} (default gateway)" in out
    assert f"! tcp {WSL_IP}:{vm.ports['eth0']}" in out
    assert "\x1b[" not in out  # no colour when piped
    assert out.strip().splitlines()[-1].endswith(("info", "skip", "warn", "fail", "ok"))


def test_listeners_name_their_owning_process(vm: Vm) -> None:
    rows = vm.json("listeners")["listeners"]
    mine = [r for r in rows if r["port"] == vm.ports["loopback"] and r["proto"] == "tcp"]
    assert mine and mine[0]["pid"] == os.getpid()


def test_mirrored_configured_but_nat_running_is_a_warning(vm: Vm) -> None:
    cfg = vm.tmp / "wslconfig-mirrored"
    cfg.write_text("[wsl2]\nnetworkingMode=mirrored\nlocalhostForwarding=false\n")
    doc = vm.json("check", "config", "--wslconfig", str(cfg))
    titles = [f["title"] for f in doc["findings"] if f["status"] == "warn"]
    assert ".wslconfig asks for mirrored networking but nat is running" in titles
    assert "localhostForwarding=false: Windows cannot reach WSL on localhost" in titles


def test_localhost_forwarding_off_turns_every_listener_to_no(vm: Vm) -> None:
    cfg = vm.tmp / "wslconfig-noforward"
    cfg.write_text("[wsl2]\nlocalhostForwarding=false\n")
    doc = vm.json("check", "listeners", "--port", str(vm.ports["any"]), "--wslconfig", str(cfg))
    (finding,) = doc["findings"]
    assert finding["evidence"]["windows_localhost"] == "no"
    assert finding["detail"] == "localhostForwarding=false in .wslconfig"


def test_a_misspelled_wslconfig_key_is_named_with_the_intended_one(vm: Vm) -> None:
    cfg = vm.tmp / "wslconfig-typo"
    cfg.write_text("[wsl2]\nnetworkMode=mirrored\n")
    res = vm.run("check", "config.wslconfig", "--wslconfig", str(cfg))
    assert res.returncode == 0  # a warning, not a failure
    assert "did you mean wsl2.networkingMode?" in res.stdout


def test_ip_host_without_a_default_route_exits_1_and_says_why(lab: Lab, tmp_path: Path) -> None:
    osrelease = tmp_path / "osrelease"
    osrelease.write_text(WSL2_KERNEL)
    # The LAN machine has no default route: a WSL VM in that state has no host address.
    res = jail.run(
        lab.prefix(lab.lan),
        jail.wslnet("ip", "host"),
        files={"/proc/sys/kernel/osrelease": osrelease},
    )
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.startswith("wslnet: no host address: ")


def test_inside_a_container_it_says_so(lab: Lab) -> None:
    res = jail.run(lab.prefix(lab.wsl), jail.wslnet("check", "environment"), touch=["/.dockerenv"])
    assert "• Running in a docker container" in res.stdout
    assert "The listeners shown are the container's" in res.stdout


def test_unknown_check_id_is_a_usage_error(lab: Lab) -> None:
    res = jail.run(lab.prefix(lab.wsl), jail.wslnet("check", "no.such.check"))
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "wslnet: unknown check 'no.such.check'; `wslnet check --list` lists them"
    )


# -- a dev container on the WSL2 kernel (Docker Desktop's WSL backend) -----------------------
def test_in_a_container_listeners_are_reached_only_through_published_ports(vm: Vm) -> None:
    rows = vm.json("listeners", container=True)["listeners"]
    verdict = {(r["proto"], r["port"]): r for r in rows}
    loopback, anyaddr = verdict[("tcp", vm.ports["loopback"])], verdict[("tcp", vm.ports["any"])]
    assert loopback["windows_localhost"] == "no"
    assert loopback["fix"] == f"bind 0.0.0.0:{vm.ports['loopback']} inside the container"
    assert anyaddr["windows_localhost"] == "if-published"
    assert f"docker run -p {vm.ports['any']}:{vm.ports['any']}" in anyaddr["fix"]
    doc = vm.json("check", "listeners", "--port", str(vm.ports["any"]), container=True)
    (finding,) = doc["findings"]
    assert finding["status"] == "info" and finding["title"].endswith(
        "Windows localhost if-published"
    )


def test_in_a_container_the_host_is_host_docker_internal_not_the_gateway(vm: Vm) -> None:
    hosts = "127.0.0.1 localhost\n198.18.0.1 host.docker.internal\n"
    doc = vm.json("ip", "host", hosts=hosts, container=True)
    assert (doc["address"], doc["source"]) == ("198.18.0.1", "/etc/hosts")
    gateway = next(c for c in doc["candidates"] if c["source"] == "default gateway")
    assert gateway["usable"] is False and "Docker bridge" in gateway["verdict"]


def test_a_container_without_host_docker_internal_has_no_host_address(vm: Vm) -> None:
    res = vm.run("ip", "host", hosts="127.0.0.1 localhost\n", container=True)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr.strip() == (
        "wslnet: no host address: in a docker container, and host.docker.internal does not "
        "resolve: run it with --add-host=host.docker.internal:host-gateway (extra_hosts in "
        "compose, runArgs in devcontainer.json)"
    )
