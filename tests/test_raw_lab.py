"""Packet-level probes in the lab: firewall vs closed vs no route, ARP, and path MTU
behind a narrow hop (tests/lab.py: win/wsl, and vc -> vr -> vs with a 1350-byte link)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import jail
from tests.helpers import assert_schema, imported_modules
from tests.lab import VPN_ROUTER, VPN_SERVER, WIN_WSL_IP, Lab
from tests.scenarios import WSL2_KERNEL

pytestmark = pytest.mark.lab  # end to end: real processes (and the lab)


def wslnet_in(
    lab: Lab, ns: str, *args: str, caps: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lab.prefix(ns), *caps, sys.executable, "-m", "wslnet", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def win_firewall(lab: Lab) -> Iterator[Lab]:
    try:
        yield lab
    finally:
        lab.flush_firewall(lab.win)


def probe_doc(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(res.stdout)
    assert_schema(doc, "probe")
    return doc


def probe_syn(lab: Lab, port: int) -> tuple[int, dict[str, object]]:
    res = wslnet_in(lab, lab.wsl, "probe", "syn", WIN_WSL_IP, str(port), "--json")
    return res.returncode, probe_doc(res)


def test_syn_to_a_dropped_port_is_filtered(win_firewall: Lab) -> None:
    lab = win_firewall
    lab.firewall(lab.win, "tcp dport 2301 drop")
    rc, doc = probe_syn(lab, 2301)
    assert (rc, doc["state"], doc["rtt"]) == (1, "filtered", None)


def test_syn_to_a_reset_port_is_closed(win_firewall: Lab) -> None:
    lab = win_firewall
    lab.firewall(lab.win, "tcp dport 2302 reject with tcp reset")
    rc, doc = probe_syn(lab, 2302)
    assert (rc, doc["state"]) == (1, "closed")


def test_syn_to_an_admin_prohibited_port_is_unreachable_with_the_code(win_firewall: Lab) -> None:
    lab = win_firewall
    lab.firewall(lab.win, "tcp dport 2303 reject with icmp type admin-prohibited")
    rc, doc = probe_syn(lab, 2303)
    assert (rc, doc["state"], doc["icmp"]) == (1, "unreachable", "admin-prohibited")


def test_syn_to_a_listening_port_is_open(lab: Lab) -> None:
    with lab.inside(lab.win):
        srv = socket.socket()
    srv.bind((WIN_WSL_IP, 0))
    srv.listen()
    try:
        rc, doc = probe_syn(lab, srv.getsockname()[1])
    finally:
        srv.close()
    assert (rc, doc["state"]) == (0, "open")
    assert isinstance(doc["rtt"], float)


def test_arp_finds_the_host(lab: Lab) -> None:
    res = wslnet_in(lab, lab.wsl, "probe", "arp", "--json")
    doc = probe_doc(res)
    assert res.returncode == 0
    assert doc["address"] == WIN_WSL_IP and doc["interface"] == "eth0"
    assert doc["mac"] and doc["mac"].count(":") == 5


def jailed_check(lab: Lab, ns: str, tmp: Path, *args: str, caps: tuple[str, ...] = ()) -> dict:  # type: ignore[type-arg]
    osrelease = tmp / "osrelease"
    osrelease.write_text(WSL2_KERNEL)
    resolv = tmp / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")  # loopback: no lookup leaves the VM
    res = jail.run(
        lab.prefix(ns),
        [*caps, *jail.wslnet("check", "--json", *args)],
        files={"/proc/sys/kernel/osrelease": osrelease, "/etc/resolv.conf": resolv},
    )
    assert res.returncode in (0, 1), res.stderr
    doc = json.loads(res.stdout)
    assert_schema(doc, "check")
    return doc  # type: ignore[no-any-return]


def test_host_up_but_firewall_dropping(win_firewall: Lab, tmp_path: Path) -> None:
    lab = win_firewall
    lab.firewall(lab.win, "tcp dport 2304 drop")
    lab.firewall(lab.win, "icmp type echo-request drop")
    doc = jailed_check(lab, lab.wsl, tmp_path, "raw", "host.reach", "--host-port", "2304")
    by_id = {f["id"]: f for f in doc["findings"]}
    host = by_id["raw.host"]
    assert host["status"] == "warn"
    assert "is up (ARP from" in host["title"] and "drops ICMP echo" in host["title"]
    assert "host up, firewall dropping" in host["detail"]
    assert 'InterfaceAlias "vEthernet (WSL)"' in host["fix"]["commands"][0]
    syn = by_id["raw.syn"]
    assert syn["evidence"]["syn"]["state"] == "filtered"
    assert syn["evidence"]["connect"]["state"] == "filtered"  # both probes shown


def test_path_mtu_behind_a_narrow_hop_is_found_from_frag_needed(lab: Lab) -> None:
    names = lab.add_vpn()
    res = wslnet_in(lab, names["vc"], "probe", "mtu", VPN_SERVER, "--json")
    doc = probe_doc(res)
    assert res.returncode == 1
    assert (doc["path_mtu"], doc["interface_mtu"], doc["method"]) == (
        1350,
        1500,
        "icmp frag-needed",
    )


def test_path_mtu_is_found_by_sweeping_when_the_router_drops_icmp(lab: Lab) -> None:
    names = lab.add_vpn()
    lab.sh(names["vr"], "nft add rule inet wslnet output icmp type destination-unreachable drop")
    try:
        res = wslnet_in(lab, names["vc"], "probe", "mtu", VPN_SERVER, "--json")
    finally:
        lab.sh(names["vr"], "nft flush chain inet wslnet output")
    doc = probe_doc(res)
    assert (doc["path_mtu"], doc["method"]) == (1350, "size sweep")


def test_a_clean_path_is_healthy(lab: Lab) -> None:
    names = lab.add_vpn()
    res = wslnet_in(lab, names["vc"], "probe", "mtu", VPN_ROUTER)
    assert res.returncode == 0
    assert res.stdout.startswith(f"path MTU to {VPN_ROUTER}: 1500 (full size got through)")


def test_check_reports_the_mtu_fix(lab: Lab, tmp_path: Path) -> None:
    names = lab.add_vpn()
    doc = jailed_check(lab, names["vc"], tmp_path, "raw.mtu", "--target", VPN_SERVER)
    by_host = {f["evidence"]["host"]: f for f in doc["findings"]}
    bad = by_host[VPN_SERVER]
    assert bad["status"] == "fail"
    assert bad["fix"]["commands"] == ["sudo ip link set dev eth0 mtu 1350"]
    assert by_host[VPN_ROUTER]["status"] == "ok"  # the host (default gateway) path is clean


def test_without_cap_net_raw_raw_findings_skip_and_nothing_crashes(
    lab: Lab, tmp_path: Path
) -> None:
    drop = ("setpriv", "--bounding-set=-net_raw")
    doc = jailed_check(lab, lab.wsl, tmp_path, "--host-port", "2305", caps=drop)
    raw = [f for f in doc["findings"] if f["id"].startswith("raw.")]
    assert {f["id"] for f in raw} == {"raw.syn", "raw.host", "raw.mtu"}
    assert all(f["status"] == "skip" for f in raw)
    assert all("run with sudo for packet-level probes" in f["detail"] for f in raw)
    assert doc["summary"]["crash"] == 0
    assert doc["environment"]["raw_probes"] is False
    res = wslnet_in(lab, lab.wsl, "probe", "syn", WIN_WSL_IP, "22", caps=drop)
    assert res.returncode == 2
    assert (
        res.stderr.strip() == "wslnet: packet-level probes need root or CAP_NET_RAW: run with sudo"
    )


def test_no_raw_turns_them_off(lab: Lab, tmp_path: Path) -> None:
    doc = jailed_check(lab, lab.wsl, tmp_path, "raw", "--no-raw")
    assert {f["detail"] for f in doc["findings"]} == {"packet-level probes are off (--no-raw)"}


def test_check_no_raw_never_imports_scapy(lab: Lab, tmp_path: Path) -> None:
    osrelease = tmp_path / "osrelease"
    osrelease.write_text(WSL2_KERNEL)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    res = jail.run(
        lab.prefix(lab.wsl),
        [sys.executable, "-X", "importtime", "-m", "wslnet", "check", "--no-raw"],
        files={"/proc/sys/kernel/osrelease": osrelease, "/etc/resolv.conf": resolv},
    )
    imported = imported_modules(res.stderr)
    assert "wslnet.check.checks" in imported  # the measurement saw the check run
    assert not {m for m in imported if m.startswith("scapy")}


def test_path_mtu_when_nothing_answers_says_why_in_one_clause(lab: Lab) -> None:
    names = lab.add_vpn()
    lab.sh(names["vr"], "nft add rule inet wslnet forward icmp type echo-request drop")
    try:
        res = wslnet_in(lab, names["vc"], "probe", "mtu", VPN_SERVER)
    finally:
        lab.sh(names["vr"], "nft flush chain inet wslnet forward")
    assert res.returncode == 1
    assert res.stdout.strip() == (
        f"path MTU to {VPN_SERVER}: unknown: frag-needed said 1350, which did not get through; "
        "no echo reply even at the minimum size: ICMP echo is blocked; eth0 MTU 1500"
    )
