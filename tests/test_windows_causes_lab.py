"""Issue 21's causes end to end: wslnet check in the jailed WSL VM, with the fake Windows
programs of test_windows_lab (netstat/tasklist answer what a test writes, PowerShell
really connects from the `win` namespace and answers the rest in 5.1's shape)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest

from tests import jail
from tests.lab import WIN_WSL_IP, WSL_IP, Lab
from tests.scenarios import Vm, mirrored
from tests.test_windows_lab import Windows, by_id, vm, windows, windows_check, wsl_service

pytestmark = pytest.mark.lab
__all__ = ["vm", "windows", "wsl_service"]  # the fixtures this module uses


@pytest.fixture
def docker_backend(lab: Lab, wsl_service: int) -> Iterator[int]:
    """Docker Desktop's backend publishing a container on the WSL service's port: a
    listener in `win` on 127.0.0.1 (Windows localhost reaches it, not WSL)."""
    with lab.inside(lab.win):
        srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", wsl_service))
    srv.listen(8)
    try:
        yield wsl_service
    finally:
        srv.close()


def test_cause1_docker_desktop_holds_the_port_windows_reaches_it_not_wsl(
    vm: Vm, windows: Windows, docker_backend: int
) -> None:
    port = docker_backend
    windows.write(owners={port: (7788, "com.docker.backend.exe")})
    doc = windows_check(vm, windows)
    expected = (
        f"Port {port} is taken on Windows by com.docker.backend.exe, pid 7788: Windows "
        f"localhost:{port} reaches it, not WSL"
    )
    for check_id in ("windows.port-owner", "windows.reach"):
        (f,) = by_id(doc, check_id)
        assert (f["status"], f["title"]) == ("fail", expected)


def test_cause2_a_listener_of_another_distribution_is_not_blamed_on_this_one(
    lab: Lab, vm: Vm, wsl_service: int
) -> None:
    # wslnet in a PID namespace of its own: the VM's socket has no process here, as a
    # listener started in another distribution (one network namespace for all).
    prefix = (*lab.prefix(lab.wsl), "unshare", "-pf", "--mount-proc")
    res = jail.run(prefix, jail.wslnet("check", "--json", "wsl.other-distros", "--wslconfig",
                                       str(vm.wslconfig)),
                   files={"/proc/sys/kernel/osrelease": vm.osrelease}, dirs=["/run/WSL"],
                   env={"WSL_DISTRO_NAME": "Ubuntu"})  # fmt: skip
    doc = json.loads(res.stdout)
    titles = [f["title"] for f in by_id(doc, "wsl.other-distros")]
    assert (
        f"tcp 0.0.0.0:{wsl_service} belongs to a process outside this distribution (all WSL2 "
        "distributions share one network namespace)"
    ) in titles


def test_cause3_networking_mode_none_says_off_by_configuration(lab: Lab, vm: Vm) -> None:
    # A VM with no eth0, as networkingMode=none leaves it: only lo.
    lab.sh(lab.wsl, "ip link set eth0 down && ip link set eth0 name eth9")
    try:
        code, doc, _, err = vm.run("check", "--json", "environment", "host.address")
    finally:
        lab.sh(lab.wsl, f"ip link set eth9 name eth0 && ip link set eth0 up && "
                        f"ip route replace default via {WIN_WSL_IP}")  # fmt: skip
    assert code == 1, err
    (off,) = [f for f in by_id(doc, "environment.kind") if f["status"] == "fail"]
    assert (
        off["title"] == "Networking is off in this WSL VM (no eth0 interface): only loopback exists"
    )
    (host,) = by_id(doc, "host.address")
    assert host["status"] == "skip"


def test_cause4_mirrored_ignored_ports_naming_a_wsl_listener(vm: Vm, wsl_service: int) -> None:
    conf = vm.tmp / "ignored.ini"
    conf.write_text(
        f"[wsl2]\nnetworkingMode=mirrored\n[experimental]\nignoredPorts={wsl_service}\n"
    )
    with mirrored(vm.lab):
        code, doc, _, err = vm.run("check", "--json", "network.ignored-ports", wslconfig=conf)
    assert code == 0, err  # a warning: exit code 0
    (f,) = by_id(doc, "network.ignored-ports")
    assert (f["status"], f["title"]) == (
        "warn",
        f"Port {wsl_service} is in ignoredPorts: Windows does not route it to the WSL listener",
    )


def test_cause5_portproxy_rules_while_the_ip_helper_service_is_stopped(
    vm: Vm, windows: Windows
) -> None:
    windows.write(
        portproxy=f"0.0.0.0         2222        {WSL_IP}     22\r\n",
        extra={"IpHelper": {"Status": 1, "StartType": 3}},
    )  # Stopped, Manual
    doc = windows_check(vm, windows)
    helper = [f for f in by_id(doc, "windows.portproxy") if "IP Helper" in f["title"]]
    assert [(f["status"], f["title"], f["fix"]["commands"]) for f in helper] == [
        ("fail", "The IP Helper service (iphlpsvc) is stopped (start: Manual): the 1 portproxy "
                 "rules do nothing", ["net start iphlpsvc"]),
    ]  # fmt: skip


def test_cause6_a_vpn_adapter_while_dns_does_not_answer(vm: Vm, windows: Windows) -> None:
    # resolv.conf names the host, where nothing answers DNS: the VPN took it.
    windows.write(extra={"Adapters": [
        {"Name": "Wi-Fi", "InterfaceDescription": "Intel(R) Wi-Fi 6 AX201 160MHz", "Metric": 35},
        {"Name": "Ethernet 3", "InterfaceDescription": "PANGP Virtual Ethernet Adapter Secure",
         "Metric": 1}]})  # fmt: skip
    doc = windows_check(vm, windows)
    (f,) = by_id(doc, "windows.vpn")
    assert (f["status"], f["title"]) == (
        "fail",
        "DNS does not answer while the GlobalProtect (Ethernet 3: PANGP Virtual Ethernet "
        "Adapter Secure) VPN is up on Windows (NAT mode)",
    )
    assert f["fix"]["commands"] == [
        'Set-NetIPInterface -InterfaceAlias "Ethernet 3" -InterfaceMetric 6000'
    ]


def test_cause7_a_proxy_setting_at_the_host_while_the_windows_proxy_is_on_loopback(
    vm: Vm, windows: Windows
) -> None:
    windows.write(owners={3128: (5120, "px.exe")})  # listening on 127.0.0.1:3128 only
    path = f"{windows.dir}:{os.environ['PATH']}"
    env = {"PATH": path, "HTTPS_PROXY": f"http://{WIN_WSL_IP}:3128"}
    code, doc, _, err = vm.run("check", "--json", "windows.proxy", env=env)
    assert code == 1, err
    (f,) = by_id(doc, "windows.proxy")
    assert (f["status"], f["title"]) == (
        "fail",
        f"HTTPS_PROXY points at the Windows host {WIN_WSL_IP}:3128, but the proxy there "
        "listens on 127.0.0.1 only",
    )
