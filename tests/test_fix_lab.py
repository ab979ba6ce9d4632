"""`wslnet check --fix` / `--undo` end to end in the jailed WSL VM (issue 25).

The fake Windows of test_windows_lab answers the checks; on top of it a fake
powershell.exe carries out what --fix asks Windows to do, the way Windows would: the
launcher's `Start-Process -Verb RunAs -ArgumentList ...` is parsed as PowerShell and
Start-Process do (single quotes, then the list joined with spaces and split again as a
Windows command line, so an unquoted path with a space breaks as it does on Windows),
the script is read from the user's folder through the fake wslpath's mapping, and each
command it knows changes the lab's real state: a firewall rule becomes an nft accept in
the `win` namespace, netsh portproxy edits the table netsh.exe lists, Start-Service
changes what PowerShell reports. A command it does not know fails, as an unknown cmdlet
does. Every call is recorded, so a test can prove that nothing changed."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import pytest

from tests import jail
from tests.lab import WIN_WSL_IP, WSL_IP, Lab
from tests.scenarios import CLEAN_HOSTS, Vm, dns_server, mirrored, resolv
from tests.test_windows_lab import (
    EMPTY_EXCLUDED,
    PORTPROXY_HEAD,
    Windows,
    vm,
    windows,
    wsl_service,
)

pytestmark = pytest.mark.lab
__all__ = ["vm", "windows", "wsl_service"]  # the fixtures this module uses

PROFILE = "C:\\Users\\Jane O'Doe"  # a space and a quote: both must survive the quoting

FAKE_ELEVATING_POWERSHELL = r'''import os, re, subprocess, sys, traceback
sys.excepthook = lambda *exc: (open(CONF["dir"] + "/fake-error.txt", "a").write(
    "".join(traceback.format_exception(*exc))), sys.__excepthook__(*exc))
DIR, GATHER, ANCHOR = CONF["dir"], CONF["gather"], CONF["anchor"]
PROFILE, HOME = CONF["profile"], CONF["home"]
argv = sys.argv[1:]
command = argv[argv.index("-Command") + 1] if "-Command" in argv else ""
with open(os.path.join(DIR, "calls.jsonl"), "a") as f:
    f.write(json.dumps(argv) + "\n")
if "-File" not in argv and "Start-Process" not in command:
    os.execv(GATHER, [GATHER, *argv])  # the checks' own PowerShell call

def linux(win):
    assert win.lower().startswith(PROFILE.lower()), win
    return HOME + win[len(PROFILE):].replace("\\", "/")

def ps_strings(text):
    """The items of a PowerShell list of single-quoted strings ('' is a quote)."""
    return [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", text)]

def windows_split(line):
    """A Windows command line split as CommandLineToArgvW does (quotes group, no escapes
    needed here)."""
    out, cur, quoted, any_ = [], "", False, False
    for ch in line:
        if ch == '"':
            quoted, any_ = not quoted, True
        elif ch == " " and not quoted:
            if cur or any_:
                out.append(cur)
            cur, any_ = "", False
        else:
            cur += ch
    if cur or any_:
        out.append(cur)
    return out

elevated = "Start-Process" in command
if elevated:
    assert re.search(r"-Verb RunAs -Wait ", command), command
    if os.path.exists(os.path.join(DIR, "decline")):  # the user says No to the UAC prompt
        print("Start-Process : This command cannot be run due to the error: The operation "
              "was canceled by the user.", file=sys.stderr)
        sys.exit(1)
    args = windows_split(" ".join(ps_strings(command.split("-ArgumentList", 1)[1])))
else:
    args = argv
script_path = linux(args[args.index("-File") + 1])
text = open(script_path, "rb").read()
assert text.startswith(b"\xef\xbb\xbf"), "Windows PowerShell 5.1 needs the BOM for UTF-8"
text = text[3:].decode("utf-8")
with open(os.path.join(DIR, "scripts.jsonl"), "a") as f:
    f.write(json.dumps({"elevated": elevated, "script": text}) + "\n")

def nft(*words):
    return subprocess.run(["nsenter", "--net=/proc/%d/ns/net" % ANCHOR, "nft", *words],
                          capture_output=True, text=True, check=True).stdout

def extra(change):
    path = os.path.join(DIR, "powershell-extra.json")
    doc = json.load(open(path))
    change(doc)
    json.dump(doc, open(path, "w"))

def rules():
    path = os.path.join(DIR, "rules.json")
    return json.load(open(path)) if os.path.exists(path) else {}

def save_rules(found):
    json.dump(found, open(os.path.join(DIR, "rules.json"), "w"))

def portproxy(change):
    path = os.path.join(DIR, "portproxy.txt")
    text = open(path, newline="").read()
    cut = text.index("----------\r\n") + 12 if text else 0
    head, rows = (text[:cut], text[cut:]) if text else (CONF["head"], "")
    lines = [r for r in rows.split("\r\n") if r.strip()]
    lines = change(lines)
    open(path, "w", newline="").write(head + "".join(r + "\r\n" for r in lines) if lines else "")

def run(cmd):
    """Carries out one command as Windows would; the error text Windows gives, or None."""
    name = re.search(r"-Name '((?:[^']|'')*)'", cmd)
    name = name.group(1).replace("''", "'") if name else None
    if cmd.startswith("New-NetFirewallRule "):
        found = rules()
        if name in found:
            return "Cannot create a file when that file already exists."
        found[name] = cmd
        save_rules(found)
        if "-InterfaceAlias 'vEthernet (WSL)'" in cmd:
            nft("insert", "rule", "inet", "wslnet", "input", "iifname", "vEthernet-WSL",
                "accept", "comment", json.dumps(name))
            extra(lambda d: d.update(WslRules=d.get("WslRules", 0) + 1))
        port = re.search(r"-Protocol (TCP|UDP) -LocalPort (\d+) ", cmd)
        if port:  # Get-NetFirewallPortFilter lists it now, as 5.1 prints a single port
            row = {"Protocol": port.group(1), "LocalPort": port.group(2)}
            extra(lambda d: d.update(Inbound=[*d.get("Inbound", []), row]))
        return None
    if cmd.startswith("Remove-NetFirewallRule "):
        found = rules()
        if name not in found:
            return f"No MSFT_NetFirewallRule objects found with property 'Name' equal to '{name}'."
        original = found.pop(name)
        if "-InterfaceAlias 'vEthernet (WSL)'" in original:
            listing = nft("-a", "list", "chain", "inet", "wslnet", "input")
            handle = re.search(r'comment "%s" # handle (\d+)' % re.escape(name), listing).group(1)
            nft("delete", "rule", "inet", "wslnet", "input", "handle", handle)
            extra(lambda d: d.update(WslRules=d.get("WslRules", 1) - 1))
        port = re.search(r"-Protocol (TCP|UDP) -LocalPort (\d+) ", original)
        if port:
            row = {"Protocol": port.group(1), "LocalPort": port.group(2)}
            extra(lambda d: d.update(Inbound=[r for r in d.get("Inbound", []) if r != row]))
        save_rules(found)
        return None
    m = re.fullmatch(r"netsh interface portproxy (add|delete) v4tov4 listenport=(\d+) "
                     r"listenaddress=(\S+)(?: connectport=(\d+) connectaddress=(\S+))?", cmd)
    if m:
        verb, port, address, cport, caddress = m.groups()
        key = lambda row: row.split()[:2] == [address, port]
        if verb == "delete":
            state = {}
            def drop(lines):
                state["hit"] = any(key(r) for r in lines)
                return [r for r in lines if not key(r)]
            portproxy(drop)
            missing = "The system cannot find the file specified. (exit code 1)"
            return None if state["hit"] else missing
        row = f"{address:<15} {port:<11} {caddress:<15} {cport}"
        portproxy(lambda lines: [r for r in lines if not key(r)] + [row])
        return None
    if cmd in ("Start-Service iphlpsvc", "Stop-Service iphlpsvc"):
        status = 4 if cmd.startswith("Start") else 1
        extra(lambda d: d.update(IpHelper={**d.get("IpHelper", {}), "Status": status}))
        return None
    m = re.fullmatch(r"Set-NetFirewallHyperVVMSetting -Name '\{40E0AC32-46A5-438A-A0B2-"
                     r"2B479E8F2E90\}' -DefaultInboundAction (Allow|Block|NotConfigured)", cmd)
    if m:
        path = os.path.join(DIR, "hyperv.json")
        doc = json.load(open(path))
        doc["DefaultInboundAction"] = {"NotConfigured": 0, "Allow": 2, "Block": 4}[m.group(1)]
        json.dump(doc, open(path, "w"))
        return None
    if cmd == "net stop winnat; net start winnat":
        # WinNAT gives its ranges back when it stops and has not reserved new ones yet:
        # only those an administrator added (marked *) stay in netsh's table.
        for name in ("excluded-tcp.txt", "excluded-udp.txt"):
            path = os.path.join(DIR, name)
            text = open(path, newline="").read()
            rows = text.split("\r\n")
            kept = [r for r in rows if not re.fullmatch(r"\s*\d+\s+\d+\s*", r)]
            open(path, "w", newline="").write("\r\n".join(kept))
        with open(os.path.join(DIR, "winnat-calls.txt"), "a") as f:
            f.write(cmd + "\n")
        return None
    return "The term '%s' is not recognized as the name of a cmdlet" % cmd.split()[0]

BOILER = ("$global:LASTEXITCODE = 0", "if ($LASTEXITCODE)", "Add-Content ")
log, number, error = None, 0, None
results = []
for line in text.splitlines():
    if line.startswith("$log = "):
        log = linux(ps_strings(line)[0])
    elif line.startswith("# action "):
        number, error = int(line.split()[2].rstrip(":")), None
    elif line.startswith("    ") and not line.strip().startswith(BOILER):
        if error is None:
            error = run(line.strip())
    elif line == "} catch {":
        results.append(f"ok {number}" if error is None else f"error {number}: {error}")
open(log, "w", encoding="utf-8-sig").write("".join(r + "\r\n" for r in results))
'''

FAKE_WSLVAR = "#!/bin/sh\n[ \"$1\" = USERPROFILE ] && printf '%s\\r\\n' {profile}\n"
FAKE_WSLPATH = r"""import sys
PROFILE, HOME = CONF["profile"], CONF["home"]
flag, path = sys.argv[1], sys.argv[2]
if flag == "-u":
    print(HOME + path[len(PROFILE):].replace("\\", "/"))
else:
    print(PROFILE + path[len(HOME):].replace("/", "\\"))
"""

# systemctl inside the VM: records its arguments; `restart systemd-resolved` starts a real
# resolver on the stub address 127.0.0.53:53 (UDP and TCP, NXDOMAIN to every query) in the
# VM's namespace, detached, its pid left in resolved.pid for the test to end.
FAKE_SYSTEMCTL = r"""import os, subprocess, sys
with open(os.path.join(CONF["dir"], "systemctl-calls.txt"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
if sys.argv[1:] != ["restart", "systemd-resolved"]:
    sys.exit(1)
proc = subprocess.Popen([sys.executable, "-c", CONF["stub"]], start_new_session=True,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
assert proc.stdout.readline() == b"ready\n"  # systemctl returns once the unit is up
open(os.path.join(CONF["dir"], "resolved.pid"), "w").write(str(proc.pid))
"""
RESOLVED_STUB = r"""import socket, struct, sys, threading, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
udp.bind(("127.0.0.53", 53)); tcp.bind(("127.0.0.53", 53)); tcp.listen(8)
nx = lambda q: q[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:]
def serve_tcp():
    while True:
        c, _ = tcp.accept()
        with c:
            c.settimeout(2)
            try:
                q = c.recv(struct.unpack(">H", c.recv(2))[0])
                a = nx(q); c.sendall(struct.pack(">H", len(a)) + a)
            except (OSError, struct.error):
                pass
threading.Thread(target=serve_tcp, daemon=True).start()
print("ready", flush=True); sys.stdout.close()
deadline = time.monotonic() + 300  # bounded, should the test's kill never come
udp.settimeout(1)
while time.monotonic() < deadline:
    try:
        q, peer = udp.recvfrom(512)
    except OSError:
        continue
    udp.sendto(nx(q), peer)
"""
# sudo and wsl.exe record their arguments; sudo then fails (as root, none is needed), and
# wsl.exe --shutdown "stops" nothing here: the record is what a test checks.
FAKE_RECORDER = '#!/bin/sh\necho "$*" >> "{log}"\nexit {code}\n'


@dataclass
class Fakes:
    """The fix-side fakes beside test_windows_lab's, and what they recorded."""

    dir: Path  # where they record (test_windows_lab's folder: they share its state)
    windows: Windows
    home: Path  # %UserProfile% as WSL sees it
    bin: Path

    @property
    def path(self) -> str:
        return f"{self.bin}:{self.windows.dir}:{os.environ['PATH']}"

    def calls(self) -> list[list[str]]:
        text = (self.dir / "calls.jsonl").read_text() if (self.dir / "calls.jsonl").exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def changing_calls(self) -> list[list[str]]:
        """The calls that could change Windows: any that runs a script file."""
        return [c for c in self.calls() if "-File" in c or "Start-Process" in " ".join(c)]

    def recorded(self, name: str) -> list[str]:
        """What a recording fake (sudo, wsl.exe, systemctl) was asked, one call a line."""
        f = self.dir / f"{name}-calls.txt"
        return f.read_text().splitlines() if f.exists() else []

    def scripts(self) -> list[dict[str, object]]:
        f = self.dir / "scripts.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


@pytest.fixture
def fakes(lab: Lab, windows: Windows, tmp_path: Path) -> Iterator[Fakes]:
    folder = tmp_path / "bin"
    folder.mkdir()
    home = tmp_path / "profile"
    (home / "AppData" / "Local" / "Temp").mkdir(parents=True)
    gather = windows.dir / "powershell.exe"
    files = {
        "powershell.exe": python_script(FAKE_ELEVATING_POWERSHELL, dir=str(windows.dir),
            gather=str(gather), anchor=windows.relay_pid, profile=PROFILE, home=str(home),
            head=PORTPROXY_HEAD),
        "wslvar": FAKE_WSLVAR.format(profile=shlex_quote(PROFILE)),
        "wslpath": python_script(FAKE_WSLPATH, profile=PROFILE, home=str(home)),
        "systemctl": python_script(FAKE_SYSTEMCTL, dir=str(windows.dir), stub=RESOLVED_STUB),
        "sudo": FAKE_RECORDER.format(log=windows.dir / "sudo-calls.txt", code=1),
        "wsl.exe": FAKE_RECORDER.format(log=windows.dir / "wsl-exe-calls.txt", code=0),
    }  # fmt: skip
    for name, text in files.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    for stale in ("calls.jsonl", "scripts.jsonl", "rules.json", "decline", "sudo-calls.txt",
                  "wsl-exe-calls.txt", "systemctl-calls.txt", "resolved.pid",
                  "winnat-calls.txt"):  # fmt: skip
        (windows.dir / stale).unlink(missing_ok=True)
    f = Fakes(windows.dir, windows, home, folder)
    try:
        yield f
    finally:
        lab.flush_firewall(lab.win)
        pid = windows.dir / "resolved.pid"
        if pid.exists():  # the resolver the fake systemctl started
            os.kill(int(pid.read_text()), signal.SIGTERM)


def python_script(body: str, **conf: object) -> str:
    """A fake program in Python: its settings in CONF, then `body`."""
    return (
        f"#!{sys.executable}\nimport json\nCONF = json.loads({json.dumps(json.dumps(conf))})\n"
        + body
    )


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def wslnet_fix(
    vm: Vm,
    fakes: Fakes,
    state: Path,
    *args: str,
    answer: str | None = None,
    etc_dir: Path | None = None,
    wslconfig: Path | None = None,
) -> tuple[int, str, str]:
    """`wslnet check ARGS` in the jailed VM with the fakes on PATH, the journal in
    `state`, and `answer` on standard input (None: nothing to read); `etc_dir`: the
    VM's /etc, kept from run to run (else a fresh one each run)."""
    argv = list(args)
    if argv[:1] == ["check"]:
        argv += ["--wslconfig", str(wslconfig or vm.wslconfig), "--no-picture"]
    res = jail.run(
        vm.lab.prefix(vm.lab.wsl),
        jail.wslnet(*argv),
        files={"/proc/sys/kernel/osrelease": vm.osrelease},
        dirs=["/run/WSL"],
        env={"WSL_DISTRO_NAME": "Ubuntu", "PATH": fakes.path, "XDG_STATE_HOME": str(state),
             "COLUMNS": "400"},
        etc=None if etc_dir else {"resolv.conf": resolv(WIN_WSL_IP), "hosts": CLEAN_HOSTS,
                                  "wsl.conf": None},
        etc_dir=etc_dir,
        input=answer,
        timeout=60,
    )  # fmt: skip
    return res.returncode, res.stdout, res.stderr


PUBLIC_BLOCKS = {
    "WslProfile": 0,  # Public, as PowerShell 5.1 prints the enum
    "Profiles": [{"Name": "Public", "Enabled": 1, "DefaultInboundAction": 4}],
    "WslRules": 0,
}


@pytest.fixture
def filtered_port(lab: Lab) -> Iterator[int]:
    """A Windows service on the WSL switch whose port the Windows firewall drops."""
    with lab.inside(lab.win):
        srv = socket.socket()
    srv.bind((WIN_WSL_IP, 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    lab.firewall(lab.win, f"tcp dport {port} drop")
    try:
        yield port
    finally:
        srv.close()
        lab.flush_firewall(lab.win)


def lines_after(out: str, marker: str) -> list[str]:
    return out[out.index(marker) :].splitlines()


FIREWALL_OFFER = (
    "  1. [Windows, Administrator] allow inbound on vEthernet (WSL)  (undo: remove the rule)"
)


def test_firewall_fix_applied_in_one_elevated_prompt_is_proved_and_undone(
    vm: Vm, fakes: Fakes, filtered_port: int, tmp_path: Path
) -> None:
    port = filtered_port
    fakes.windows.write(extra=PUBLIC_BLOCKS)
    state = tmp_path / "state"
    args = ("check", "host.reach", "windows.firewall", "--host-port", str(port), "--fix")
    code, out, err = wslnet_fix(vm, fakes, state, *args, answer="y\n")
    assert code == 0, out + err
    tail = lines_after(out, "Fixes wslnet can apply:")
    assert tail[:3] == [
        "Fixes wslnet can apply:",
        FIREWALL_OFFER,
        "Apply 1? [y/N/list]   (one Windows administrator prompt for 1 fix)",
    ]
    assert re.fullmatch(
        rf"✓ host\.reach: Windows {WIN_WSL_IP}:{port} is open \(\d+ ms\)      was: filtered",
        tail[3],
    ), tail
    assert re.fullmatch(
        r"✓ windows\.firewall: Windows firewall: vEthernet \(WSL\) is Public, inbound Block, "
        r"1 rules admit WSL      was: warn",
        tail[4],
    ), tail
    assert tail[5] == "Undo with: wslnet check --undo"
    # One elevated script, read from the user's folder, holding the rule with its name.
    (script,) = fakes.scripts()
    assert script["elevated"] is True
    assert (
        "    New-NetFirewallRule -Name 'wslnet-wsl-inbound' -DisplayName 'WSL (wslnet)' "
        "-Direction Inbound -InterfaceAlias 'vEthernet (WSL)' -Action Allow"
    ) in str(script["script"]).splitlines()
    assert list((fakes.home / "AppData" / "Local" / "Temp").iterdir()) == []  # cleaned up
    journal = (state / "wslnet" / "fix-journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in journal] == ["fix"]

    code, out, err = wslnet_fix(vm, fakes, state, "check", "--undo")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[:4] == [
        f"Undoing the fixes applied {json.loads(journal[0])['when']}:",
        "  1. [Windows, Administrator] remove the rule",
        "  (one Windows administrator prompt for 1 fix)",
        "✓ remove the rule  (undid: allow inbound on vEthernet (WSL))",
    ]
    assert lines[4] == "Now:"
    assert any(
        re.fullmatch(rf"✗ Windows {WIN_WSL_IP}:{port} is filtered \(\d+ ms\)", line)
        for line in lines
    ), out  # the finding is back: the drop rule applies again
    assert json.loads((fakes.dir / "rules.json").read_text()) == {}
    code, out, _ = wslnet_fix(vm, fakes, state, "check", "--undo")
    assert (code, out.splitlines()[0][:30]) == (1, "Nothing to undo: no fix applie")


def test_dry_run_prints_the_commands_and_changes_nothing(
    vm: Vm, fakes: Fakes, filtered_port: int, tmp_path: Path
) -> None:
    fakes.windows.write(extra=PUBLIC_BLOCKS)
    args = ("check", "host.reach", "--host-port", str(filtered_port), "--dry-run")
    code, out, err = wslnet_fix(vm, fakes, tmp_path, *args)
    assert code == 1, err  # the state is unchanged: the failure stands
    assert lines_after(out, "Fixes wslnet can apply:") == [
        "Fixes wslnet can apply:",
        FIREWALL_OFFER,
        "Dry run: nothing is changed. wslnet would run:",
        "  Windows, Administrator (one Windows administrator prompt for 1 fix):",
        "    # allow inbound on vEthernet (WSL)",
        "    PS> New-NetFirewallRule -Name 'wslnet-wsl-inbound' -DisplayName 'WSL (wslnet)' "
        "-Direction Inbound -InterfaceAlias 'vEthernet (WSL)' -Action Allow",
        "    #   undo: PS> Remove-NetFirewallRule -Name 'wslnet-wsl-inbound'",
    ]
    assert fakes.changing_calls() == []
    assert not (tmp_path / "wslnet").exists()  # no journal


def test_declining_changes_nothing_and_no_stdin_without_yes_is_exit_2(
    vm: Vm, fakes: Fakes, filtered_port: int, tmp_path: Path
) -> None:
    fakes.windows.write(extra=PUBLIC_BLOCKS)
    args = ("check", "host.reach", "--host-port", str(filtered_port), "--fix")
    code, out, _ = wslnet_fix(vm, fakes, tmp_path, *args, answer="n\n")
    assert code == 1
    assert out.splitlines()[-1] == "Apply 1? [y/N/list] Nothing changed."
    code, out, err = wslnet_fix(vm, fakes, tmp_path, *args)  # standard input closed
    assert code == 2
    assert err.splitlines() == [
        "wslnet: --fix asks before it changes anything, and standard input is closed: add "
        "--yes to apply the fixes listed, or --dry-run to see their commands"
    ]
    assert fakes.changing_calls() == []


def test_a_declined_administrator_prompt_is_said_and_exits_1(
    vm: Vm, fakes: Fakes, filtered_port: int, tmp_path: Path
) -> None:
    fakes.windows.write(extra=PUBLIC_BLOCKS)
    (fakes.dir / "decline").touch()
    args = ("check", "host.reach", "--host-port", str(filtered_port), "--fix", "--yes")
    code, out, _ = wslnet_fix(vm, fakes, tmp_path, *args)
    assert code == 1
    assert out.splitlines()[-1] == (
        "✗ 1. allow inbound on vEthernet (WSL): not applied: the Administrator prompt was "
        "declined or failed (Start-Process : This command cannot be run due to the error: "
        "The operation was canceled by the user.)"
    )
    assert not (tmp_path / "wslnet").exists()  # nothing applied: nothing to undo


def test_a_fix_whose_recheck_still_fails_says_what_it_found_and_exits_1(
    lab: Lab, vm: Vm, fakes: Fakes, filtered_port: int, tmp_path: Path
) -> None:
    # A second drop that the rule on vEthernet (WSL) does not lift (a Block rule wins
    # over an Allow on Windows): the rule is added, the port stays filtered.
    fakes.windows.write(extra=PUBLIC_BLOCKS)
    lab.sh(lab.win, "nft add table inet wslnetblock && nft add chain inet wslnetblock input "
                    "'{ type filter hook input priority -5; policy accept; }' && nft add rule "
                    f"inet wslnetblock input tcp dport {filtered_port} drop")  # fmt: skip
    try:
        args = ("check", "host.reach", "--host-port", str(filtered_port), "--fix", "--yes")
        code, out, _ = wslnet_fix(vm, fakes, tmp_path, *args)
    finally:
        lab.sh(lab.win, "nft delete table inet wslnetblock")
    assert code == 1
    tail = lines_after(out, "  (one Windows administrator prompt")
    assert re.fullmatch(
        r"✗ 1\. allow inbound on vEthernet \(WSL\): applied, but host\.reach still finds: "
        rf"Windows {WIN_WSL_IP}:{filtered_port} is filtered \(\d+ ms\)",
        tail[1],
    ), tail
    assert tail[2] == (
        "    no answer: the Windows firewall drops traffic from WSL on vEthernet (WSL)"
    )
    assert tail[3] == "Undo with: wslnet check --undo"  # it was applied: it can be undone


PORTPROXY_OLD = "198.18.5.77"  # where the VM was before WSL restarted


def test_stale_portproxy_is_re_added_for_the_vm_and_undo_restores_it(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    fakes.windows.write(
        portproxy=f"0.0.0.0         2222        {PORTPROXY_OLD}     22\r\n",
        extra={"IpHelper": {"Status": 4, "StartType": 2}},
    )
    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "windows.portproxy", "--fix",
                                answer="list\n1\n")  # fmt: skip
    assert code == 0, out + err
    tail = lines_after(out, "Fixes wslnet can apply:")
    assert tail[:7] == [
        "Fixes wslnet can apply:",
        "  1. [Windows, Administrator] delete portproxy 0.0.0.0:2222, add it for "
        f"{WSL_IP}  (undo: restore it for {PORTPROXY_OLD})",
        "Apply 1? [y/N/list] Fixes wslnet can apply:",
        "  1. [Windows, Administrator] delete portproxy 0.0.0.0:2222, add it for "
        f"{WSL_IP}  (undo: restore it for {PORTPROXY_OLD})",
        "       PS> netsh interface portproxy delete v4tov4 listenport=2222 listenaddress=0.0.0.0",
        "       PS> netsh interface portproxy add v4tov4 listenport=2222 listenaddress=0.0.0.0 "
        f"connectport=22 connectaddress={WSL_IP}",
        "Apply 1? [y/N/list]   (one Windows administrator prompt for 1 fix)",
    ]
    assert tail[7] == (f"• windows.portproxy: portproxy 0.0.0.0:2222 -> {WSL_IP}      was: fail")
    assert f"{WSL_IP}     22" in (fakes.dir / "portproxy.txt").read_text()

    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "--undo")
    assert code == 0, out + err
    assert f"✗ portproxy 0.0.0.0:2222 -> {PORTPROXY_OLD} is stale: the WSL VM is at {WSL_IP} " \
           "now" in out.splitlines()  # fmt: skip
    assert f"{PORTPROXY_OLD}     22" in (fakes.dir / "portproxy.txt").read_text()


def test_ip_helper_stopped_is_started_and_undo_stops_it(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    fakes.windows.write(
        portproxy=f"0.0.0.0         8080        {WSL_IP}     8080\r\n",
        extra={"IpHelper": {"Status": 1, "StartType": 3}},  # Stopped, Manual
    )
    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "windows.portproxy", "--fix", "--yes")
    assert code == 0, out + err
    tail = lines_after(out, "Fixes wslnet can apply:")
    assert tail[1] == (
        "  1. [Windows, Administrator] start the IP Helper service (iphlpsvc)  (undo: stop it)"
    )
    assert tail[3] == "✓ windows.portproxy: no longer reported      was: fail"
    (script,) = fakes.scripts()
    assert "    Start-Service iphlpsvc" in str(script["script"]).splitlines()
    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "--undo")
    assert code == 0, out + err
    assert any(line.startswith("✗ The IP Helper service (iphlpsvc) is stopped") for line in
               out.splitlines()), out  # fmt: skip


def test_hyperv_firewall_in_mirrored_mode_is_opened_and_undo_blocks_again(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    fakes.windows.write(hyperv={"Enabled": 1, "DefaultInboundAction": 4})
    with mirrored(vm.lab):
        code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "windows.firewall", "--fix",
                                    "--yes")  # fmt: skip
        assert code == 0, out + err
        tail = lines_after(out, "Fixes wslnet can apply:")
        assert tail[1] == (
            "  1. [Windows, Administrator] set the Hyper-V firewall's inbound default for WSL "
            "to Allow  (undo: set it back to Block)"
        )
        assert tail[3] == "✓ windows.firewall: Hyper-V firewall: inbound Allow      was: warn"
        code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "--undo")
    assert code == 0, out + err
    assert "! The Hyper-V firewall blocks inbound connections to WSL (mirrored mode)" in (
        out.splitlines()
    )


def test_two_windows_fixes_share_one_elevated_prompt_and_one_undo(
    vm: Vm, fakes: Fakes, filtered_port: int, tmp_path: Path
) -> None:
    port = filtered_port
    fakes.windows.write(
        extra={**PUBLIC_BLOCKS, "IpHelper": {"Status": 4, "StartType": 2}},
        portproxy=f"0.0.0.0         2222        {PORTPROXY_OLD}     22\r\n",
    )
    args = ("check", "host.reach", "windows.portproxy", "--host-port", str(port), "--fix")
    code, out, err = wslnet_fix(vm, fakes, tmp_path, *args, answer="y\n")
    assert code == 0, out + err
    tail = lines_after(out, "Apply 1, 2? [y/N/list]")
    assert tail[0] == "Apply 1, 2? [y/N/list]   (one Windows administrator prompt for 2 fixes)"
    assert re.fullmatch(r"✓ host\.reach: .* is open \(\d+ ms\)      was: filtered", tail[1])
    assert tail[2] == f"• windows.portproxy: portproxy 0.0.0.0:2222 -> {WSL_IP}      was: fail"
    (script,) = fakes.scripts()  # one script, one prompt
    actions = [line for line in str(script["script"]).splitlines() if line.startswith("# action")]
    assert actions == [
        "# action 1: allow inbound on vEthernet (WSL)",
        f"# action 2: delete portproxy 0.0.0.0:2222, add it for {WSL_IP}",
    ]
    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "--undo")
    assert code == 0, out + err
    assert len(fakes.scripts()) == 2  # the undo: one more script for both
    assert out.splitlines()[1:4] == [
        f"  1. [Windows, Administrator] restore it for {PORTPROXY_OLD}",
        "  2. [Windows, Administrator] remove the rule",
        "  (one Windows administrator prompt for 2 fixes)",
    ]


def test_hyperv_dry_run_changes_nothing_and_declining_keeps_it_blocked(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    fakes.windows.write(hyperv={"Enabled": 1, "DefaultInboundAction": 4})
    with mirrored(vm.lab):
        code, out, _ = wslnet_fix(vm, fakes, tmp_path, "check", "windows.firewall", "--dry-run")
        assert code == 0  # a warning: the exit code says nothing failed
        assert lines_after(out, "Dry run:")[2:] == [
            "    # set the Hyper-V firewall's inbound default for WSL to Allow",
            "    PS> Set-NetFirewallHyperVVMSetting -Name '{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}'"
            " -DefaultInboundAction Allow",
            "    #   undo: PS> Set-NetFirewallHyperVVMSetting -Name "
            "'{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}' -DefaultInboundAction Block",
        ]
        code, out, _ = wslnet_fix(vm, fakes, tmp_path, "check", "windows.firewall", "--fix",
                                  answer="n\n")  # fmt: skip
    assert out.splitlines()[-1] == "Apply 1? [y/N/list] Nothing changed."
    assert fakes.changing_calls() == []
    assert json.loads((fakes.dir / "hyperv.json").read_text())["DefaultInboundAction"] == 4


LAN_PORT = 8443


def test_lan_port_rule_is_added_for_a_forwarder_and_undo_removes_it(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    # The forwarder's config file on Windows (%APPDATA%\wslnet\forward.toml through the
    # fake /mnt/c): it listens for the LAN on 8443, and no firewall rule admits it.
    conf = fakes.home / "AppData" / "Roaming" / "wslnet" / "forward.toml"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f'[[forward]]\nlisten = "0.0.0.0:{LAN_PORT}"\ntarget = "wsl:443"\n')
    fakes.windows.write(extra={"Inbound": [{"Protocol": "TCP", "LocalPort": "3389"}]})
    state = tmp_path / "state"
    code, out, err = wslnet_fix(vm, fakes, state, "check", "windows.firewall", "--fix",
                                answer="y\n")  # fmt: skip
    assert code == 0, out + err
    assert (
        f"! wslnet forward listens on TCP port {LAN_PORT} for the LAN, but no firewall rule "
        "admits it"
    ) in out.splitlines()
    assert lines_after(out, "Fixes wslnet can apply:")[1:5] == [
        f"  1. [Windows, Administrator] allow inbound TCP port {LAN_PORT} from the LAN  "
        "(undo: remove the rule)",
        "Apply 1? [y/N/list]   (one Windows administrator prompt for 1 fix)",
        f"✓ windows.firewall: 1 firewall rules admit TCP port {LAN_PORT} (LAN)      was: warn",
        "Undo with: wslnet check --undo",
    ]
    (script,) = fakes.scripts()
    assert script["elevated"] is True
    assert (
        f"    New-NetFirewallRule -Name 'wslnet-lan-tcp-{LAN_PORT}' -DisplayName 'wslnet "
        f"{LAN_PORT}' -Direction Inbound -Protocol TCP -LocalPort {LAN_PORT} -Action Allow"
    ) in str(script["script"]).splitlines()
    inbound = json.loads((fakes.dir / "powershell-extra.json").read_text())["Inbound"]
    assert {"Protocol": "TCP", "LocalPort": str(LAN_PORT)} in inbound

    code, out, err = wslnet_fix(vm, fakes, state, "check", "--undo")
    assert code == 0, out + err
    assert out.splitlines()[1:4] == [
        "  1. [Windows, Administrator] remove the rule",
        "  (one Windows administrator prompt for 1 fix)",
        f"✓ remove the rule  (undid: allow inbound TCP port {LAN_PORT} from the LAN)",
    ]
    assert (
        f"! wslnet forward listens on TCP port {LAN_PORT} for the LAN, but no firewall rule "
        "admits it"
    ) in out.splitlines()  # the finding is back
    extra = json.loads((fakes.dir / "powershell-extra.json").read_text())
    assert extra["Inbound"] == [{"Protocol": "TCP", "LocalPort": "3389"}]
    assert json.loads((fakes.dir / "rules.json").read_text()) == {}


STUB = "127.0.0.53"


def test_a_dead_resolved_stub_is_restarted_without_sudo_as_root_and_undo_has_nothing_to_do(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    etc = tmp_path / "etc"
    etc_copy(vm, etc, {"resolv.conf": resolv(STUB, by_wsl=False)})
    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "dns.resolver", "--fix",
                                answer="y\n", etc_dir=etc)  # fmt: skip
    assert code == 0, out + err
    assert any(line.startswith(f"✗ systemd-resolved's stub {STUB} does not answer") for line in
               out.splitlines()), out  # fmt: skip
    tail = lines_after(out, "Fixes wslnet can apply:")
    assert tail[1:3] == [
        "  1. [here, as root] restart systemd-resolved  (undo: nothing to undo: a restart "
        "changes no setting)",
        "Apply 1? [y/N/list]   (sudo once for 1 fix)",
    ]
    assert re.fullmatch(
        rf"✓ dns\.resolver: Resolver {re.escape(STUB)} answers \(.*\)      was: fail", tail[3]
    ), tail  # the stub the fake systemctl started really answers the re-check
    assert fakes.recorded("systemctl") == ["restart systemd-resolved"]
    assert fakes.recorded("sudo") == []  # root already: no sudo

    code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "--undo", etc_dir=etc)
    assert code == 0, out + err
    assert out.splitlines()[1:3] == [
        "  1. [here, as root] nothing to undo: a restart changes no setting",
        "• restart systemd-resolved: nothing to undo: a restart changes no setting",
    ]  # and no "(sudo once ...)" line: nothing ran
    assert fakes.recorded("systemctl") == ["restart systemd-resolved"]


def etc_copy(vm: Vm, etc: Path, files: dict[str, str]) -> None:
    """A copy of /etc for the VM that outlives each run, with the lab's files in it."""
    vm.lab.sh(vm.lab.wsl, f"cp -a /etc/. {etc}/ 2>/dev/null || mkdir -p {etc} && cp -a /etc/. "
                          f"{etc}/")  # fmt: skip
    (etc / "hosts").write_text(CLEAN_HOSTS)
    (etc / "wsl.conf").unlink(missing_ok=True)
    resolv_conf = etc / "resolv.conf"
    resolv_conf.unlink(missing_ok=True)
    for name, text in files.items():
        if text.startswith("->"):
            (etc / name).symlink_to(text[2:].strip())
        else:
            (etc / name).write_text(text)


DANGLING = "/run/systemd/resolve/stub-resolv.conf"


def test_a_dangling_resolv_conf_becomes_wsls_file_with_the_link_kept_and_undo_puts_it_back(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    etc = tmp_path / "etc"
    etc_copy(vm, etc, {"resolv.conf": f"-> {DANGLING}"})
    with dns_server(vm.lab, vm.lab.win, WIN_WSL_IP):  # the host's DNS proxy (NAT mode)
        code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "dns.resolver", "--fix",
                                    "--yes", etc_dir=etc)  # fmt: skip
        assert code == 0, out + err
        tail = lines_after(out, "Fixes wslnet can apply:")
        assert tail[1:3] == [
            f"  1. [here, as root] write WSL's /etc/resolv.conf (nameserver {WIN_WSL_IP}), the "
            "link kept as /etc/resolv.conf.wslnet-backup  (undo: put the link back)",
            "  (sudo once for 1 fix)",
        ]
        assert re.fullmatch(
            rf"✓ dns\.resolver: Resolver {WIN_WSL_IP} answers \(.*\)      was: fail", tail[3]
        ), tail
        assert (etc / "resolv.conf").read_text() == resolv(WIN_WSL_IP)  # as WSL writes it
        assert os.readlink(etc / "resolv.conf.wslnet-backup") == DANGLING
        code, out, err = wslnet_fix(vm, fakes, tmp_path, "check", "--undo", etc_dir=etc)
    assert code == 0, out + err
    assert (
        "✓ put the link back  (undid: write WSL's /etc/resolv.conf (nameserver "
        f"{WIN_WSL_IP}), the link kept as /etc/resolv.conf.wslnet-backup)" in out.splitlines()
    )
    assert f"✗ /etc/resolv.conf is a link to {DANGLING}, which does not exist" in out.splitlines()
    assert os.readlink(etc / "resolv.conf") == DANGLING
    assert not (etc / "resolv.conf.wslnet-backup").is_symlink()
    assert fakes.recorded("sudo") == []


WSLCONFIG_TYPOS = (
    "[wsl2]\r\nmemory=4GB\r\ndnsTunneling = ture   # on\r\nlocalhostForwarding=false\r\n"
)
WSLCONFIG_FIXED = (
    "[wsl2]\r\nmemory=4GB\r\ndnsTunneling = true   # on\r\nlocalhostForwarding=true\r\n"
)


def test_wslconfig_typos_are_corrected_with_a_backup_and_shutdown_runs_only_on_its_own_yes(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    conf = fakes.home / ".wslconfig"
    conf.write_bytes(WSLCONFIG_TYPOS.encode())
    backup = fakes.home / f".wslconfig.wslnet-{sha256(WSLCONFIG_TYPOS.encode()).hexdigest()[:8]}"
    run = functools.partial(wslnet_fix, vm, fakes, tmp_path, wslconfig=conf)
    code, out, err = run("check", "config", "--fix", answer="y\nn\n")  # fixes yes, shutdown no
    assert code == 0, out + err
    tail = lines_after(out, "Fixes wslnet can apply:")
    assert (
        tail[:18]
        == [
            "Fixes wslnet can apply:",
            "  1. [here] edit .wslconfig: dnsTunneling=true, localhostForwarding=true  (undo: "
            "restore it from the backup)",
            f"       --- {conf}",
            f"       +++ {conf} (after)",
            "       @@ -1,4 +1,4 @@",
            "        [wsl2]",
            "        memory=4GB",
            "       -dnsTunneling = ture   # on",
            "       -localhostForwarding=false",
            "       +dnsTunneling = true   # on",
            "       +localhostForwarding=true",
            "       applies after `wsl --shutdown`, which is asked for on its own",
            "Apply 1? [y/N/list]   (1 fix here)",
            f"✓ config.wslconfig: {conf}: WSL reads every line      was: warn",
            "✓ config.mode: .wslconfig matches the live nat mode      was: warn",
            "Undo with: wslnet check --undo",
            "Run `wsl --shutdown` now, so the changes apply? It stops every WSL distribution, this "
            "one too. [y/N] These changes apply after `wsl --shutdown`: run it from Windows when "
            "ready; it stops every WSL distribution, this one too",
        ][:18]
    )
    assert conf.read_bytes() == WSLCONFIG_FIXED.encode()  # CRLF and the comment kept
    assert backup.read_bytes() == WSLCONFIG_TYPOS.encode()
    assert fakes.recorded("wsl-exe") == []  # no to the shutdown: not run

    code, out, err = run("check", "--undo")  # standard input closed: no one said yes
    assert code == 0, out + err
    assert conf.read_bytes() == WSLCONFIG_TYPOS.encode()
    assert not backup.exists()
    assert "! localhostForwarding=false: Windows cannot reach WSL on localhost" in out.splitlines()
    assert fakes.recorded("wsl-exe") == []

    code, out, err = run("check", "config", "--fix", "--yes")
    assert code == 0, out + err
    assert out.splitlines()[-1].endswith("(or give --shutdown with --yes); it stops every WSL "
                                         "distribution, this one too")  # fmt: skip
    assert conf.read_bytes() == WSLCONFIG_FIXED.encode()
    assert fakes.recorded("wsl-exe") == []  # --yes alone never stops every distribution

    code, out, err = run("check", "--undo", answer="y\n")  # its own yes
    assert code == 0, out + err
    assert out.splitlines()[-1] == (
        "Run `wsl --shutdown` now, so the changes apply? It stops every WSL distribution, this "
        "one too. [y/N] ✓ wsl --shutdown: every WSL distribution stopped"
    )
    assert fakes.recorded("wsl-exe") == ["--shutdown"]
    assert conf.read_bytes() == WSLCONFIG_TYPOS.encode()


def test_wslconfig_dry_run_shows_the_diff_and_changes_nothing(
    vm: Vm, fakes: Fakes, tmp_path: Path
) -> None:
    conf = fakes.home / ".wslconfig"
    conf.write_bytes(WSLCONFIG_TYPOS.encode())
    code, out, _ = wslnet_fix(vm, fakes, tmp_path, "check", "config", "--dry-run",
                              "--shutdown", wslconfig=conf)  # fmt: skip
    assert code == 2  # --shutdown with --dry-run: a usage error
    code, out, _ = wslnet_fix(vm, fakes, tmp_path, "check", "config", "--dry-run", wslconfig=conf)
    assert code == 0
    assert "       +localhostForwarding=true" in out.splitlines()
    assert out.splitlines()[-1] == (
        "  then, only on its own yes (or --shutdown): wsl --shutdown (stops every WSL distribution)"
    )
    assert conf.read_bytes() == WSLCONFIG_TYPOS.encode()
    assert sorted(p.name for p in fakes.home.iterdir()) == [".wslconfig", "AppData"]
    assert fakes.recorded("wsl-exe") == []


@pytest.fixture
def eth0_service(lab: Lab) -> Iterator[int]:
    """A server in the VM bound to its eth0 address: WSL's relay misses it (#10206)."""
    with lab.inside(lab.wsl):
        srv = socket.socket()
    srv.bind((WSL_IP, 0))
    srv.listen(8)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


FORWARD_HEAD = 'api = false\n\n[[forward]]\nlisten = "8080"\ntarget = "wsl:80"\n'


def test_a_listener_the_relay_misses_is_added_to_the_forwarders_file_and_undo_removes_it(
    vm: Vm, fakes: Fakes, eth0_service: int, tmp_path: Path
) -> None:
    port = eth0_service
    conf = fakes.home / "AppData" / "Roaming" / "wslnet" / "forward.toml"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(FORWARD_HEAD)
    state = tmp_path / "state"
    args = ("check", "listeners.bind-address", "--port", str(port), "--fix")
    code, out, err = wslnet_fix(vm, fakes, state, *args, answer="y\n")
    assert code == 0, out + err
    comm = Path("/proc/self/comm").read_text().strip()  # the server is this process's socket
    listener = f"tcp {WSL_IP}:{port} ({comm}, pid {os.getpid()})"
    assert f"! {listener}: Windows localhost no" in out.splitlines()
    tail = lines_after(out, "Fixes wslnet can apply:")
    assert tail[1] == (
        f"  1. [here] add a forward of TCP port {port} to wsl:{port} in "
        "%APPDATA%\\wslnet\\forward.toml  (undo: remove that table (the backup put back))"
    )
    assert f'       +listen = "{port}"' in tail  # the diff, before the question
    note = tail.index("       a running wslnet forwarder on Windows reloads the file at once; "
                      "if none runs, start it on Windows with `wslnet forward` (it reads that "
                      "file) or `wslnet service install`")  # fmt: skip
    question = next(n for n, line in enumerate(tail) if line.startswith("Apply 1? [y/N/list]"))
    assert note < question
    assert tail[question + 1] == (
        f"• listeners.bind-address: {listener}: forwarded by the wslnet forwarder's file on "
        "Windows      was: warn"
    )
    assert conf.read_text() == FORWARD_HEAD + (
        "\n# added by wslnet check --fix (undo: wslnet check --undo)\n"
        f'[[forward]]\nlisten = "{port}"\ntarget = "wsl:{port}"\n'
    )
    assert fakes.changing_calls() == []  # a file through /mnt/c: no PowerShell, no prompt

    code, out, err = wslnet_fix(vm, fakes, state, "check", "--undo")
    assert code == 0, out + err
    assert (
        "✓ remove that table (the backup put back)  (undid: add a forward of TCP port "
        f"{port} to wsl:{port} in %APPDATA%\\wslnet\\forward.toml)"
    ) in out.splitlines()
    assert f"! {listener}: Windows localhost no" in out.splitlines()  # the finding is back
    assert conf.read_text() == FORWARD_HEAD
    assert sorted(p.name for p in conf.parent.iterdir()) == ["forward.toml"]


def test_a_port_winnat_reserved_is_freed_by_a_restart_after_its_warning(
    vm: Vm, fakes: Fakes, wsl_service: int, tmp_path: Path
) -> None:
    port = wsl_service
    low = port - 10
    rows = f"{low:>10}  {low + 99:>10}\r\n{1024:>10}  {1024:>10}     *\r\n"
    fakes.windows.write(excluded=EMPTY_EXCLUDED.replace(
        "----------    --------\r\n", "----------    --------\r\n" + rows))  # fmt: skip
    state = tmp_path / "state"
    args = ("check", "windows.excluded-ports", "--port", str(port), "--fix")
    code, out, err = wslnet_fix(vm, fakes, state, *args, answer="y\n")
    assert code == 0, out + err
    assert (f"✗ TCP port {port} is reserved by Windows (range {low}-{low + 99})"
            in out.splitlines())  # fmt: skip
    assert lines_after(out, "Fixes wslnet can apply:")[1:5] == [
        "  1. [Windows, Administrator] restart WinNAT to free the port ranges it reserved  "
        "(undo: nothing to undo: a restart changes no setting)",
        "       warning: restarting WinNAT drops every NAT connection on Windows (WSL's and "
        "Docker's) for a moment",
        "Apply 1? [y/N/list]   (one Windows administrator prompt for 1 fix)",
        f"✓ windows.excluded-ports: No port of interest is in a range Windows reserves "
        f"({port})      was: fail",
    ]
    (script,) = fakes.scripts()
    assert script["elevated"] is True
    assert fakes.recorded("winnat") == ["net stop winnat; net start winnat"]
    table = (fakes.dir / "excluded-tcp.txt").read_text()
    assert f"{low:>10}" not in table and "      1024        1024     *" in table

    code, out, err = wslnet_fix(vm, fakes, state, "check", "--undo")
    assert code == 0, out + err
    assert (
        "• restart WinNAT to free the port ranges it reserved: nothing to undo: a restart "
        "changes no setting"
    ) in out.splitlines()
    assert len(fakes.scripts()) == 1  # nothing ran: no second prompt
