"""The Windows side from inside the jailed WSL VM, through interop: fake netsh.exe,
netstat.exe, tasklist.exe and powershell.exe on PATH answer from what the test writes
and from the lab's real state. The fake PowerShell really connects to localhost:PORT
from the `win` namespace, where a forwarder plays WSL's relay (wslrelay.exe)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ForwarderProcess, assert_schema
from tests.lab import WSL_IP, Lab
from tests.scenarios import Vm, mirrored

pytestmark = pytest.mark.lab

FAKE_NETSH = """#!/bin/sh
case "$*" in
  *portproxy*) cat "{dir}/portproxy.txt" ;;
  *protocol=udp*) cat "{dir}/excluded-udp.txt" ;;
  *excludedportrange*) cat "{dir}/excluded-tcp.txt" ;;
  *) exit 1 ;;
esac
"""
FAKE_CAT = '#!/bin/sh\ncat "{file}"\n'
FAKE_POWERSHELL = """#!{python}
# powershell.exe as the tests need it: the connection test runs for real, from the
# Windows namespace; the Hyper-V firewall setting comes from a file.
import ctypes, json, os, re, socket, sys, time
time.sleep(float(os.environ.get("FAKE_POWERSHELL_DELAY", "0")))  # PowerShell starts slowly
script = sys.argv[-1]
time.sleep(int(re.search(r"Start-Sleep -Milliseconds ([0-9]+)", script).group(1)) / 1000)
open("{dir}/powershell-args.json", "w").write(json.dumps(sys.argv[1:]))
ports = [int(p) for p in re.search(r"\\$ports=@\\(([0-9,]*)\\)", script).group(1).split(",") if p]
fd = os.open("/proc/{pid}/ns/net", os.O_RDONLY)
assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0
reach = []
for port in ports:
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        reach.append({{"Port": port, "Done": True, "Reached": True, "Error": ""}})
    except ConnectionRefusedError:
        # Windows retries a refused loopback connect for ~2 s (SYN retries): after the
        # script's 300 ms wait the task has not finished (wsl-networking.md section 9).
        reach.append({{"Port": port, "Done": False, "Reached": False, "Error": ""}})
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        reach.append({{"Port": port, "Done": True, "Reached": False, "Error": why}})
    finally:
        s.close()
doc = {{"Reach": reach, "HyperV": json.load(open("{dir}/hyperv.json"))}}
doc.update(json.load(open("{dir}/powershell-extra.json")))  # as 5.1 prints them
print(json.dumps(doc))
"""
EMPTY_EXCLUDED = "\r\nProtocol tcp Port Exclusion Ranges\r\n\r\nStart Port    End Port\r\n" \
                 "----------    --------\r\n\r\n* - Administered port exclusions.\r\n"  # fmt: skip
PORTPROXY_HEAD = "\r\nListen on ipv4:             Connect to ipv4:\r\n\r\nAddress         Port" \
                 "        Address         Port\r\n--------------- ----------  --------------- " \
                 "----------\r\n"  # fmt: skip


@dataclass
class Windows:
    """The fake Windows programs' answers, in files a test rewrites."""

    dir: Path
    relay_pid: int

    def write(
        self,
        excluded: str = EMPTY_EXCLUDED,
        portproxy: str = "",
        owners: dict[int, tuple[int, str]] | None = None,
        hyperv: dict[str, object] | None = None,
        extra: dict[str, object] | None = None,
        listeners: dict[int, tuple[int, str, str]] | None = None,
    ) -> None:
        """`owners`: port -> (pid, program) on 127.0.0.1; `listeners`: port -> (pid,
        program, address); `extra`: more of PowerShell's answer (5.1's shape)."""
        (self.dir / "excluded-tcp.txt").write_text(excluded)
        (self.dir / "excluded-udp.txt").write_text(EMPTY_EXCLUDED.replace("tcp", "udp"))
        (self.dir / "portproxy.txt").write_text(PORTPROXY_HEAD + portproxy if portproxy else "")
        table = {p: (pid, name, "127.0.0.1") for p, (pid, name) in (owners or {}).items()}
        table.update(listeners or {})
        rows = "".join(
            f"  TCP    {address}:{port:<6}  0.0.0.0:0   LISTENING   {pid}\r\n"
            for port, (pid, _, address) in table.items()
        )
        (self.dir / "netstat.txt").write_text("\r\nActive Connections\r\n\r\n" + rows)
        (self.dir / "powershell-extra.json").write_text(json.dumps(extra or {}))
        names = {pid: name for pid, name, _ in table.values()}
        (self.dir / "tasklist.txt").write_text(
            "".join(f'"{n}","{p}","Console","1","1,000 K"\r\n' for p, n in names.items())
        )
        (self.dir / "hyperv.json").write_text(
            json.dumps(hyperv or {"Enabled": 1, "DefaultInboundAction": 2})  # GpoBoolean True
        )


@contextmanager
def fake_windows(lab: Lab, folder: Path) -> Iterator[Windows]:
    """The fake Windows programs in `folder` (put it first on PATH in the jail)."""
    anchor = subprocess.Popen([*lab.prefix(lab.win), "sleep", "600"])  # a process in `win`
    files = {
        "netsh.exe": FAKE_NETSH.format(dir=folder),
        "netstat.exe": FAKE_CAT.format(file=folder / "netstat.txt"),
        "tasklist.exe": FAKE_CAT.format(file=folder / "tasklist.txt"),
        "powershell.exe": FAKE_POWERSHELL.format(python=sys.executable, dir=folder, pid=anchor.pid),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    try:
        yield Windows(folder, anchor.pid)
    finally:
        anchor.kill()
        anchor.wait()


@pytest.fixture(scope="module")
def windows(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Windows]:
    with fake_windows(lab, tmp_path_factory.mktemp("windows-bin")) as w:
        yield w


@pytest.fixture(scope="module")
def vm(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Vm:
    return Vm(lab, tmp_path_factory.mktemp("winvm"))


@pytest.fixture
def wsl_service(lab: Lab) -> Iterator[int]:
    """A server in the VM bound to 0.0.0.0: what WSL's relay forwards."""
    with lab.inside(lab.wsl):
        srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


@pytest.fixture
def relay(lab: Lab, wsl_service: int) -> Iterator[ForwarderProcess]:
    """WSL's relay, played by a forwarder in `win`: localhost:PORT -> the VM's PORT."""
    fwd = ForwarderProcess(f"127.0.0.1:{wsl_service}={WSL_IP}:{wsl_service}",
                           prefix=lab.prefix(lab.win))  # fmt: skip
    try:
        yield fwd.started()
    finally:
        fwd.stop()


def windows_check(vm: Vm, windows: Windows, *args: str) -> dict[str, Any]:
    path = f"{windows.dir}:{os.environ['PATH']}"
    code, doc, _, err = vm.run("check", "--json", "windows", *args, env={"PATH": path})
    assert code in (0, 1), err
    assert_schema(doc, "check")
    return doc  # type: ignore[no-any-return]


def by_id(doc: dict[str, Any], check_id: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == check_id]


def test_healthy_windows_side_has_nothing_to_act_on(
    vm: Vm, windows: Windows, relay: ForwarderProcess, wsl_service: int
) -> None:
    windows.write(owners={wsl_service: (relay.proc.pid, "wslrelay.exe")})
    doc = windows_check(vm, windows)
    bad = [f"{f['id']}: {f['title']}" for f in doc["findings"] if f["status"] in ("warn", "fail")]
    assert bad == []
    (reach,) = [f for f in by_id(doc, "windows.reach") if f":{wsl_service}" in f["title"]]
    assert reach["status"] == "ok"  # the fake PowerShell really connected through the relay
    args = json.loads((windows.dir / "powershell-args.json").read_text())
    assert args[:2] == ["-NoProfile", "-NonInteractive"]


def test_a_reserved_range_over_a_listener_is_named(
    vm: Vm, windows: Windows, wsl_service: int
) -> None:
    low = wsl_service - 10
    excluded = EMPTY_EXCLUDED.replace(
        "----------    --------\r\n", f"----------    --------\r\n{low:>10}  {low + 99:>10}\r\n"
    )
    windows.write(excluded=excluded)
    doc = windows_check(vm, windows)
    (hit,) = [f for f in by_id(doc, "windows.excluded-ports") if f["status"] == "fail"]
    assert hit["title"] == (
        f"TCP port {wsl_service} is reserved by Windows (range {low}-{low + 99})"
    )
    assert "net stop winnat" in hit["fix"]["commands"]


def test_a_stale_portproxy_rule_after_the_vm_moved(vm: Vm, windows: Windows) -> None:
    old = "198.18.5.77"  # where the VM was before WSL restarted
    windows.write(portproxy=f"0.0.0.0         2222        {old}     22\r\n")
    doc = windows_check(vm, windows)
    (stale,) = by_id(doc, "windows.portproxy")
    assert stale["status"] == "fail"
    assert (
        stale["title"] == f"portproxy 0.0.0.0:2222 -> {old} is stale: the WSL VM is at {WSL_IP} now"
    )
    assert stale["fix"]["commands"][0] == (
        "netsh interface portproxy delete v4tov4 listenport=2222 listenaddress=0.0.0.0"
    )


def test_a_windows_program_holding_the_port_is_named_and_the_proof_fails(
    vm: Vm, windows: Windows, wsl_service: int
) -> None:
    windows.write(owners={wsl_service: (4120, "node.exe")})  # no relay: node.exe has it
    doc = windows_check(vm, windows)
    (owner,) = by_id(doc, "windows.port-owner")
    assert (owner["status"], owner["title"]) == (
        "fail",
        f"Port {wsl_service} is taken on Windows by node.exe, pid 4120: Windows "
        f"localhost:{wsl_service} reaches it, not WSL",
    )
    (reach,) = by_id(doc, "windows.reach")  # refused takes ~2 s on Windows: not proved
    assert (reach["status"], reach["title"]) == (
        "info",
        f"Windows localhost:{wsl_service}: not proved (the connection test had not finished "
        "after 300 ms); netstat shows node.exe (pid 4120) listening",
    )


def test_without_interop_the_windows_checks_skip_and_say_why(vm: Vm) -> None:
    code, doc, _, err = vm.run("check", "--json", "windows")
    assert code == 0, err
    assert {f["status"] for f in doc["findings"]} == {"skip"}
    assert "interop off" in doc["findings"][0]["detail"]


def test_the_hyperv_firewall_blocking_inbound_in_mirrored_mode(vm: Vm, windows: Windows) -> None:
    windows.write(hyperv={"Enabled": 1, "DefaultInboundAction": 4})  # PS 5.1 prints numbers
    with mirrored(vm.lab):
        doc = windows_check(vm, windows)
    (fw,) = by_id(doc, "windows.firewall")
    assert fw["status"] == "warn"
    assert fw["title"] == "The Hyper-V firewall blocks inbound connections to WSL (mirrored mode)"
    assert fw["fix"]["commands"][0].startswith("Set-NetFirewallHyperVVMSetting")
