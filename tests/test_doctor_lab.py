"""Diagnoses that are right, in the lab: healthy set-ups get a clean bill, and each
failure reported on WSL's tracker gets its real cause and fix (tests/scenarios.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import assert_schema
from tests.lab import WIN_LAN_IP, WIN_WSL_IP, Lab
from tests.scenarios import (
    DNS_TUNNEL,
    Vm,
    dev_server,
    dns_server,
    dns_tunnel,
    mirrored,
    nft,
    no_arp_answer,
    problems,
    resolv,
    shadowing_bridge,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def vm(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Vm:
    return Vm(lab, tmp_path_factory.mktemp("doctor"))


def check(vm: Vm, *args: str, **kw: Any) -> dict[str, Any]:
    code, doc, _, err = vm.run("check", "--json", *args, **kw)
    assert code in (0, 1), err
    assert_schema(doc, "check")
    return doc  # type: ignore[no-any-return]


def by_id(doc: dict[str, Any], check_id: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == check_id]


@pytest.fixture
def windows_port(lab: Lab) -> Iterator[int]:
    """A service listening on the Windows host's WSL-side address."""
    with lab.inside(lab.win):
        srv = socket.socket()
    srv.bind((WIN_WSL_IP, 0))
    srv.listen(8)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


# -- 1. healthy systems get a clean bill -------------------------------------------------
def test_healthy_nat_with_the_dns_tunnel_and_a_dual_stack_dev_server_is_clean(vm: Vm) -> None:
    with dns_tunnel(vm.lab), dev_server(vm.lab) as port:
        doc = check(vm, etc={"resolv.conf": resolv(DNS_TUNNEL)})
    assert problems(doc) == []
    tunnel = [f for f in by_id(doc, "listeners.bind-address") if DNS_TUNNEL in f["title"]]
    assert {f["status"] for f in tunnel} == {"info"} and len(tunnel) == 2  # TCP and UDP
    assert "WSL's DNS tunnel" in tunnel[0]["detail"]
    (dev,) = [f for f in by_id(doc, "listeners.bind-address") if f":{port}" in f["title"]]
    assert dev["status"] == "ok"
    assert f"127.0.0.1:{port}, [::1]:{port}" in dev["title"]
    (dns,) = by_id(doc, "dns.resolver")
    assert dns["status"] == "ok" and dns["title"].startswith(f"Resolver {DNS_TUNNEL} answers")


def test_healthy_mirrored_mode_is_clean_and_says_what_mirrored_changes(vm: Vm) -> None:
    conf = vm.tmp / "wslconfig-mirrored.ini"
    conf.write_text("[wsl2]\nnetworkingMode=mirrored\n")
    with mirrored(vm.lab), dns_server(vm.lab, vm.lab.win, WIN_WSL_IP):
        doc = check(vm, wslconfig=conf, etc={"resolv.conf": resolv(WIN_WSL_IP)})
    assert doc["environment"]["networking_mode"] == "mirrored"
    assert problems(doc) == []
    titles = [f["title"] for f in by_id(doc, "network.mirrored")]
    assert any("hostAddressLoopback is off" in t for t in titles)
    assert any("Hyper-V firewall" in t for t in titles)


def test_a_stale_host_docker_internal_is_a_warning_with_the_fix(vm: Vm) -> None:
    hosts = f"127.0.0.1 localhost\n{WIN_LAN_IP} host.docker.internal\n"
    with dns_server(vm.lab, vm.lab.win, WIN_WSL_IP):
        doc = check(vm, "host.address", etc={"hosts": hosts})
    ok, stale = by_id(doc, "host.address")
    assert ok["status"] == "ok" and ok["title"].startswith(f"Windows host is {WIN_WSL_IP}")
    assert stale["status"] == "warn"
    assert stale["title"] == (
        f"host.docker.internal in /etc/hosts is {WIN_LAN_IP}, not the host ({WIN_WSL_IP})"
    )
    assert stale["fix"]["commands"] == ["wslnet ip host"]


# -- 2. silence is not always the firewall -----------------------------------------------
def firewall_said(doc: dict[str, Any]) -> bool:
    return any(
        "New-NetFirewallRule" in " ".join((f.get("fix") or {}).get("commands", []))
        for f in doc["findings"]
    )


def test_a_host_that_does_not_answer_arp_is_gone_not_firewalled(vm: Vm, windows_port: int) -> None:
    with no_arp_answer(vm.lab):
        doc = check(vm, "host.reach", "raw.host", "--host-port", str(windows_port))
    (reach,) = by_id(doc, "host.reach")
    assert reach["status"] == "fail"
    assert "does not answer ARP on eth0" in reach["detail"]
    assert reach["fix"]["commands"] == ["wsl --shutdown"]
    (host,) = by_id(doc, "raw.host")
    assert host["status"] == "fail" and host["fix"]["commands"] == ["wsl --shutdown"]
    assert not firewall_said(doc)  # one story: no contradicting firewall advice


def test_a_route_that_shadows_the_host_is_named_with_its_interface(
    vm: Vm, windows_port: int
) -> None:
    with shadowing_bridge(vm.lab):
        doc = check(vm, "host.reach", "--host-port", str(windows_port))
    (reach,) = by_id(doc, "host.reach")
    assert reach["status"] == "fail"
    assert reach["detail"].startswith(
        f"the route to {WIN_WSL_IP} leaves through br-shadow, not eth0"
    )
    assert reach["fix"]["commands"] == [f"ip route get {WIN_WSL_IP}"]
    assert not firewall_said(doc)


def test_an_admin_prohibited_reject_is_the_firewall(vm: Vm, windows_port: int) -> None:
    rule = f"tcp dport {windows_port} reject with icmp type admin-prohibited"
    with nft(vm.lab, vm.lab.win, f"input {rule}"):
        doc = check(vm, "host.reach", "--host-port", str(windows_port))
    (reach,) = by_id(doc, "host.reach")
    assert reach["status"] == "fail" and reach["evidence"]["state"] == "unreachable"
    assert "the host is up: its firewall rejects it" in reach["detail"]
    assert "New-NetFirewallRule" in reach["fix"]["commands"][0]


def test_a_dropping_firewall_on_a_host_that_is_up_gets_the_firewall_fix(
    vm: Vm, windows_port: int
) -> None:
    with nft(vm.lab, vm.lab.win, f"input tcp dport {windows_port} drop"):
        doc = check(vm, "host.reach", "--host-port", str(windows_port))
    (reach,) = by_id(doc, "host.reach")
    assert reach["evidence"]["state"] == "filtered"
    assert reach["evidence"]["path"]["answered_arp"] is True
    assert "New-NetFirewallRule" in reach["fix"]["commands"][0]


# -- 3. DNS: the actual failure ----------------------------------------------------------
def test_a_dead_systemd_resolved_stub_gets_the_resolved_fix(vm: Vm) -> None:
    doc = check(vm, "dns", etc={"resolv.conf": resolv("127.0.0.53", by_wsl=False)})
    (dns,) = by_id(doc, "dns.resolver")
    assert dns["status"] == "fail"
    assert dns["title"].startswith("systemd-resolved's stub 127.0.0.53 does not answer")
    assert dns["fix"]["commands"] == ["sudo systemctl restart systemd-resolved"]
    assert "dnsTunneling" not in dns["fix"]["text"]


def test_a_dangling_resolv_conf_link_is_named_with_its_target(vm: Vm) -> None:
    target = "/run/systemd/resolve/stub-resolv.conf"
    doc = check(vm, "dns", etc={"resolv.conf": f"-> {target}"})
    (dns,) = by_id(doc, "dns.resolver")
    assert dns["status"] == "fail"
    assert dns["title"] == f"/etc/resolv.conf is a link to {target}, which does not exist"
    assert dns["fix"]["commands"] == ["sudo rm /etc/resolv.conf", "wsl --shutdown"]


def test_a_slow_resolver_is_a_warning(vm: Vm) -> None:
    with dns_server(vm.lab, vm.lab.win, WIN_WSL_IP, delay=1.15):
        doc = check(vm, "dns")
    (dns,) = by_id(doc, "dns.resolver")
    assert dns["status"] == "warn"
    assert dns["title"].startswith(f"Resolver {WIN_WSL_IP} answers, but slowly")


def test_a_resolver_without_tcp_is_a_warning(vm: Vm) -> None:
    with dns_server(vm.lab, vm.lab.win, WIN_WSL_IP, tcp=False):
        doc = check(vm, "dns")
    (dns,) = by_id(doc, "dns.resolver")
    assert dns["status"] == "warn"
    assert dns["title"].startswith(f"Resolver {WIN_WSL_IP} answers over UDP but not over TCP")


def test_every_nameserver_is_tried(vm: Vm) -> None:
    dead = "198.18.0.9"  # in the lab's range; nothing there
    with dns_server(vm.lab, vm.lab.win, WIN_WSL_IP):
        doc = check(vm, "dns", etc={"resolv.conf": resolv(dead, WIN_WSL_IP)})
    first, second = by_id(doc, "dns.resolver")
    assert first["status"] == "fail" and first["title"].startswith(f"Resolver {dead} does not")
    assert second["status"] == "ok"


# -- 4. proxies --------------------------------------------------------------------------
def test_a_localhost_proxy_in_nat_mode_points_at_the_vm_and_gets_the_host_fix(vm: Vm) -> None:
    env = {"HTTPS_PROXY": "http://127.0.0.1:3128"}
    apt = 'Acquire::http::Proxy "http://localhost:3128";\n'
    doc = check(vm, "proxy", env=env, etc={"apt/apt.conf.d/95proxy": apt})
    env_finding, apt_finding = by_id(doc, "proxy.settings")
    assert env_finding["status"] == "warn"
    assert env_finding["title"] == (
        "HTTPS_PROXY points at 127.0.0.1:3128: in NAT mode that is this VM, not Windows"
    )
    assert env_finding["fix"]["commands"] == ["export HTTPS_PROXY=http://$(wslnet ip host):3128"]
    assert apt_finding["status"] == "warn"
    assert apt_finding["title"].startswith("/etc/apt/apt.conf.d/95proxy:1 points at localhost")


def test_a_proxy_on_the_host_that_answers_is_fine(vm: Vm, windows_port: int) -> None:
    doc = check(vm, "proxy", env={"http_proxy": f"http://{WIN_WSL_IP}:{windows_port}"})
    (finding,) = by_id(doc, "proxy.settings")
    assert finding["status"] == "ok"


# -- 5. mirrored mode --------------------------------------------------------------------
def test_mirrored_mode_without_a_default_route_fails_with_restart(vm: Vm) -> None:
    with mirrored(vm.lab, default_route=False):
        doc = check(vm, "network")
    (broken,) = [f for f in by_id(doc, "network.mirrored") if f["status"] == "fail"]
    assert broken["title"].startswith("Mirrored mode has no default route")
    assert broken["fix"]["commands"] == ["wsl --shutdown"]


# -- 6 and 7: on time, and a report ------------------------------------------------------
def test_with_the_host_gone_every_check_still_answers(vm: Vm, windows_port: int) -> None:
    with no_arp_answer(vm.lab):
        code, doc, _, err = vm.run("check", "--json", "--host-port", str(windows_port))
    assert code == 1, err
    assert not [f for f in doc["findings"] if f["status"] == "crash"]
    (mtu,) = by_id(doc, "raw.mtu")
    assert mtu["status"] == "skip" and "does not answer ARP" in mtu["title"]


def test_the_report_is_markdown_with_versions_settings_and_evidence(vm: Vm) -> None:
    conf = vm.tmp / "wslconfig-report.ini"
    conf.write_text("[wsl2]\nnetworkingMode=nat\ndnsTunneling=true\n")
    with dns_server(vm.lab, vm.lab.win, WIN_WSL_IP):
        code, text, _, err = vm.run("check", "--report", wslconfig=conf)
    assert code == 0, err
    lines = text.splitlines()
    assert lines[0] == "## wslnet check report"
    # Text from the system is escaped (issue 20): it renders as written, never as markup.
    assert "| wslnet | 0\\.1\\.0 |" in lines
    assert "| kernel | 5\\.15\\.167\\.4\\-microsoft\\-standard\\-WSL2 |" in lines
    assert "| wsl2\\.dnsTunneling | true |" in lines
    assert any(ln.startswith("- ✓ **ok** `host.address`: Windows host is") for ln in lines)
    assert "  <details><summary>evidence</summary>" in lines


def test_the_check_reads_the_proxy_and_mirrored_ids_in_list(vm: Vm, tmp_path: Path) -> None:
    code, text, _, _ = vm.run("check", "--list")
    assert code == 0
    for check_id in ("proxy.settings", "network.mirrored", "dns.resolver", "host.reach"):
        assert check_id in text
