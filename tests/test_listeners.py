"""`wslnet listeners` and the listeners check, in process: /proc comes in through the
seam (system.PROC, system.read_proc), the rest of the WSL VM through system's other
functions, and what a user sees (the JSON both commands print) is asserted."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import ROOT, assert_schema
from wslnet import listeners, system
from wslnet.cli import cli
from wslnet.facts import procnet
from wslnet.verdict import CAUSES

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)


def tcp_line(n: int, local: str, state: str, inode: int) -> str:
    """One /proc/net/tcp row, as the kernel prints it (samples/proc-net-tcp-1.txt)."""
    return (
        f"{n:>4}: {local} 0100007F:A1B2 {state} 00000000:00000000 00:00000000 00000000"
        f"     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty /proc/net for this test, in place of the machine's."""
    (tmp_path / "net").mkdir()
    monkeypatch.setattr(system, "PROC", tmp_path)
    return tmp_path


def test_a_busy_hosts_proc_net_tcp_is_read_whole_without_a_false_unreadable_line(
    proc: Path,
) -> None:
    # 40,000 connections make the file pass 4 MiB (28,000 did on a real busy host);
    # the listener the user asks about is the last row.
    rows = [tcp_line(n, "0500A8C0:1F90", "01", 100 + n) for n in range(40_000)]
    rows.append(tcp_line(40_000, "00000000:0BB8", "0A", 7))  # 0.0.0.0:3000, LISTEN
    text = HEADER + "".join(rows)
    assert len(text.encode()) > system.USER_FILE_LIMIT
    (proc / "net" / "tcp").write_text(text)
    entries, problems = listeners.read_sockets()
    assert problems == []
    assert len(entries) == 40_001
    assert [(e.address, e.port) for e in entries if e.listening] == [("0.0.0.0", 3000)]


def as_the_kernel_writes_it(name: str) -> str:
    """A sample from its header line on (a pasted one may start with the command)."""
    text = (ROOT / "tests" / "samples" / name).read_text(encoding="utf-8")
    return text[text.index(" sl ") - 1 if text.startswith("#") else 0 :].lstrip("\n")


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("proc-net-tcp-1.txt", "tcp"),
        ("proc-net-tcp-3.txt", "tcp"),
        ("proc-net-tcp-4.txt", "tcp"),
        ("proc-net-tcp-5.txt", "tcp"),
        ("proc-net-tcp6-1.txt", "tcp6"),
    ],
)
def test_the_forwarders_listener_read_finds_every_listener_of_the_whole_table(
    proc: Path, name: str, file: str
) -> None:
    text = as_the_kernel_writes_it(name)
    assert "local_address" in text.splitlines()[0]
    (proc / "net" / file).write_text(text)
    whole = [e for e in listeners.read_sockets()[0] if e.proto == "tcp" and e.listening]
    assert whole  # every sample has listeners
    assert listeners.read_tcp_listeners() == whole


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/net is Linux's")
def test_the_listener_read_stops_where_the_kernel_starts_the_established_part() -> None:
    # This namespace's real table: a listener, and 300 connections to it after it.
    with socket.create_server(("127.0.0.1", 0), backlog=512) as srv:
        port = srv.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        try:
            whole = system.read_proc("net/tcp") or ""
            part = system.read_proc_while("net/tcp", procnet.in_listening_part) or ""
            found = listeners.read_tcp_listeners()
        finally:
            for c in clients:
                c.close()
    assert ("127.0.0.1", port) in [(e.address, e.port) for e in found]
    assert part.count("\n") < whole.count("\n") - 300  # no client's row was read
    assert all(e.state == procnet.TCP_LISTEN for e in found)


@pytest.fixture
def wsl_vm(proc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A NAT-mode WSL2 VM as system reports it, whose .wslconfig (found through
    %UserProfile%, as WSL does) turns localhostForwarding off; a listener on 0.0.0.0:3000."""
    (proc / "net" / "tcp").write_text(HEADER + tcp_line(0, "00000000:0BB8", "0A", 7))
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / ".wslconfig").write_text("[wsl2]\nlocalhostForwarding=false\n")
    kernel = "5.15.153.1-microsoft-standard-WSL2"
    monkeypatch.setattr(system, "kernel_release", lambda: kernel)
    monkeypatch.setattr(system, "exists", lambda path: False)
    monkeypatch.setattr(
        system, "interfaces", lambda: {"lo": ["127.0.0.1"], "eth0": ["198.18.5.20"]}
    )
    monkeypatch.setattr(system, "run", lambda argv, timeout=2.0: "nat\n")  # wslinfo
    monkeypatch.setattr(system, "socket_owners", lambda: {7: (4120, "node")})
    monkeypatch.setattr(system, "windows_userprofile", lambda: str(profile))
    monkeypatch.setattr(system, "interop_status", lambda in_wsl: "interop off in this test")
    return profile


def test_listeners_and_check_agree_when_localhost_forwarding_is_off(wsl_vm: Path) -> None:
    listed = CliRunner().invoke(cli, ["listeners", "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.output)
    assert_schema(doc, "listeners")
    (row,) = doc["listeners"]
    checked = CliRunner().invoke(cli, ["check", "listeners", "--json"])
    (finding,) = json.loads(checked.output)["findings"]
    assert (row["windows_localhost"], row["cause"]) == ("no", "localhost-forwarding-off")
    ev = finding["evidence"]
    assert (ev["windows_localhost"], ev["cause"]) == (row["windows_localhost"], row["cause"])
    assert finding["detail"] == row["reason"] == "localhostForwarding=false in .wslconfig"
    assert (row["fix_commands"], row["fix_where"]) == (["wslnet forward 3000"], "windows")


def test_without_the_setting_both_say_the_relay_forwards_it(wsl_vm: Path) -> None:
    (wsl_vm / ".wslconfig").write_text("[wsl2]\nmemory=4GB\n")
    (row,) = json.loads(CliRunner().invoke(cli, ["listeners", "--json"]).output)["listeners"]
    checked = CliRunner().invoke(cli, ["check", "listeners", "--json"])
    (finding,) = json.loads(checked.output)["findings"]
    assert row["cause"] == finding["evidence"]["cause"] == "relayed"


def test_the_listeners_schema_names_every_cause() -> None:
    schema = json.loads((ROOT / "wslnet" / "schemas" / "listeners.json").read_text())
    cause = schema["properties"]["listeners"]["items"]["properties"]["cause"]
    assert tuple(cause["enum"]) == CAUSES
