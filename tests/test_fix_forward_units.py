"""The last fixes of issue 25, pure: a WSL listener the relay misses gets a [[forward]]
table added to the Windows forwarder's config file (backup kept, the undo restores it),
and a port in a range WinNAT reserved gets a WinNAT restart whose warning comes before
consent. The sh commands are run for real in a temporary folder, to see the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wslnet.check.fix import plan, text
from wslnet.check.forwarder import ForwardFile, forward_file, parse
from wslnet.check.verdicts import judge_all, listeners
from wslnet.check.verdicts.windows import WINNAT_WARNING, excluded_ports
from wslnet.check.windows_facts import ToolOutput, WindowsFacts
from wslnet.facts import procnet
from wslnet.facts.windows import Excluded
from wslnet.verdict import Action, Listener

VM = ["198.18.5.20"]
OLD = 'api = false\n\n[[forward]]\nlisten = "8080"\ntarget = "wsl:80"\n'
TABLE = (
    "# added by wslnet check --fix (undo: wslnet check --undo)\n"
    '[[forward]]\nlisten = "5173"\ntarget = "wsl:5173"\n'
)


def entry(address: str, port: int = 5173, proto: str = "tcp") -> procnet.SocketEntry:
    family = "ipv6" if ":" in address else "ipv4"
    state = procnet.TCP_LISTEN if proto == "tcp" else procnet.UDP_UNCONNECTED
    return procnet.SocketEntry(proto, family, address, port, "0.0.0.0", 0, state, 0, 1)  # type: ignore[arg-type]


def judged(address: str, file: ForwardFile | None, proto: str = "tcp",
           forwarding: bool = True) -> Listener:  # fmt: skip
    (found,) = judge_all([entry(address, proto=proto)], "nat", forwarding, VM, forward_file=file)
    return found


def action_of(found: Listener) -> Action:
    assert found.fix is not None and found.fix.action is not None
    return found.fix.action


def sh(commands: tuple[str, ...]) -> None:
    subprocess.run(["sh", "-ec", "\n".join(commands)], check=True, timeout=10)


@pytest.mark.skipif(sys.platform == "win32", reason="runs the sh commands the fix runs in WSL")
def test_an_eth0_listener_gets_the_forward_added_to_the_file_and_undo_removes_exactly_it(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "AppData" / "Roaming" / "wslnet" / "forward.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text(OLD)
    file = forward_file(conf, windows=False)
    action = action_of(judged(VM[0], file))
    assert action.where == "here"  # from WSL, through /mnt/c
    assert action.summary == (
        "add a forward of TCP port 5173 to wsl:5173 in %APPDATA%\\wslnet\\forward.toml"
    )
    assert action.undo_summary == "remove that table (the backup put back)"
    assert not action.needs_shutdown  # the forwarder reloads its file; WSL is not involved
    assert f"+{TABLE.splitlines()[1]}" in action.diff  # shown before consent
    sh(action.commands)
    assert conf.read_text() == OLD + "\n" + TABLE
    assert [(x.proto, x.port) for x in parse(conf.read_text())] == [("tcp", 8080), ("tcp", 5173)]
    sh(action.undo)
    assert conf.read_text() == OLD
    assert sorted(p.name for p in conf.parent.iterdir()) == ["forward.toml"]  # backup gone


@pytest.mark.skipif(sys.platform == "win32", reason="runs the sh commands the fix runs in WSL")
def test_a_udp_listener_without_a_file_gets_a_new_one_with_proto_udp(tmp_path: Path) -> None:
    conf = tmp_path / "AppData" / "Roaming" / "wslnet" / "forward.toml"
    action = action_of(judged("0.0.0.0", forward_file(conf, windows=False), proto="udp"))
    assert action.undo_summary == "remove the file"
    sh(action.commands)  # the wslnet folder is made too
    assert conf.read_text() == TABLE + 'proto = "udp"\n'
    sh(action.undo)
    assert not conf.exists()


def test_what_the_forwarder_cannot_reach_at_the_vm_address_gets_no_action() -> None:
    file = ForwardFile("/mnt/c/forward.toml", None, False)
    other = judged("127.0.0.2", file)  # the `wsl` target is the VM's address, not 127.0.0.2
    assert other.cause == "bound-to-other-loopback" and other.fix is not None
    assert other.fix.action is None
    off = judged("127.0.0.1", file, forwarding=False)
    assert off.fix is not None and off.fix.action is None
    assert action_of(judged("0.0.0.0", file, forwarding=False)).where == "here"
    assert judged("0.0.0.0", file).fix is None  # relayed: nothing to fix


def test_a_port_the_file_forwards_already_is_said_and_not_offered_again() -> None:
    file = ForwardFile("/mnt/c/forward.toml", TABLE, False, frozenset({("tcp", 5173)}))
    found = judged(VM[0], file)
    (f,) = listeners([found], [], None, "nat")
    assert f.status == "info" and f.fix is None
    assert f.title == "tcp 198.18.5.20:5173: forwarded by the wslnet forwarder's file on Windows"
    assert "listens on TCP port 5173: reached there while it runs" in f.detail


def test_natively_on_windows_powershell_writes_the_file_as_the_user() -> None:
    path = "C:\\Users\\Jane\\AppData\\Roaming\\wslnet\\forward.toml"
    action = action_of(judged(VM[0], ForwardFile(path, None, True)))
    assert action.where == "windows"
    assert action.commands[0] == (
        "New-Item -ItemType Directory -Force -Path 'C:\\Users\\Jane\\AppData\\Roaming\\wslnet' "
        "| Out-Null"
    )
    assert all("sudo" not in c for c in action.commands + action.undo)


def test_a_file_that_is_not_toml_gets_no_table(tmp_path: Path) -> None:
    conf = tmp_path / "forward.toml"
    conf.write_text("[[forward]\nlisten = 1\n")
    assert forward_file(conf, windows=False) is None


def facts(administered: bool) -> WindowsFacts:
    out = ToolOutput(("netsh.exe",), 0, "")
    return WindowsFacts(excluded=[Excluded("tcp", 5100, 5199, administered)],
                        outputs={"excluded-tcp": out})  # fmt: skip


def test_a_port_winnat_reserved_offers_a_restart_with_its_warning_before_consent() -> None:
    (f,) = excluded_ports([("tcp", 5173)], facts(False))
    f.id = "windows.excluded-ports"
    (item,) = plan.applicable([f])
    a = item.action
    assert (a.where, a.commands) == ("windows-admin", ("net stop winnat; net start winnat",))
    assert text.offer([item]) == [
        "Fixes wslnet can apply:",
        "  1. [Windows, Administrator] restart WinNAT to free the port ranges it reserved  "
        "(undo: nothing to undo: a restart changes no setting)",
        f"       {WINNAT_WARNING}",
    ]
    assert "Docker's" in WINNAT_WARNING and "drops every NAT connection" in WINNAT_WARNING
    batch = plan.batches([a])
    assert f"    # {WINNAT_WARNING}" in text.dry_run(batch)
    undo = plan.reverse(a)
    assert undo.commands == () and undo.note == ""
    assert text.undone(undo, None, False) == (
        "• restart WinNAT to free the port ranges it reserved: nothing to undo: a restart "
        "changes no setting"
    )


def test_a_range_an_administrator_reserved_is_not_freed_by_a_restart() -> None:
    (f,) = excluded_ports([("tcp", 5173)], facts(True))
    assert f.fix is not None and f.fix.action is None
    assert "net stop winnat" in f.fix.commands  # the advice stays
