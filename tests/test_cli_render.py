"""What `wslnet check` prints for people: where each command runs, a shared fix said
once, words wrapped to the terminal, and the root hint (in-process, pure renderers)."""

from __future__ import annotations

import json

from wslnet.check import render
from wslnet.check.model import Finding
from wslnet.verdict import Fix
from wslnet.where import Environment

FIREWALL = Fix(
    "allow WSL through the Windows firewall",
    ['New-NetFirewallRule -DisplayName "WSL" -Direction Inbound -InterfaceAlias '
     '"vEthernet (WSL)" -Action Allow'],
    "windows-admin",
)  # fmt: skip


def _fail(title: str, fix: Fix) -> Finding:
    return Finding(id="host.reach", status="fail", title=title, fix=fix)


def test_every_command_says_where_it_runs_and_a_shared_fix_is_printed_once() -> None:
    findings = [
        _fail("Windows 198.18.0.1:5432 is filtered", FIREWALL),
        _fail("Windows 198.18.0.1:6379 is filtered", FIREWALL),
        Finding(id="raw.mtu", status="fail", title="Path MTU 1350",
                fix=Fix("lower the MTU", ["sudo ip link set dev eth0 mtu 1350"], "here-root")),
    ]  # fmt: skip
    assert render.for_people(findings, False, False).splitlines() == [
        "✗ Windows 198.18.0.1:5432 is filtered",
        "    fix: allow WSL through the Windows firewall",
        "    run on Windows, in PowerShell as Administrator:",
        f"      PS> {FIREWALL.commands[0]}",
        "✗ Windows 198.18.0.1:6379 is filtered",
        '    fix: the same as for "Windows 198.18.0.1:5432 is filtered" above',
        "✗ Path MTU 1350",
        "    fix: lower the MTU",
        "    run here, as root:",
        "      $ sudo ip link set dev eth0 mtu 1350",
        "",
        "3 fail",
    ]
    env = Environment("linux", None, "", None, "", "other", None, False)
    doc = json.loads(render.as_json(env, findings))
    assert doc["findings"][0]["fix"]["where"] == "windows-admin"


def test_findings_wrap_at_80_columns_with_a_hanging_indent_never_mid_word() -> None:
    title = "tcp 198.18.5.20:5173 (node, pid 812): Windows localhost no " + "word " * 12
    detail = "bound to 198.18.5.20: the relay does not forward the eth0 address (#10206) " * 2
    fix = Fix("bind 0.0.0.0:5173; or forward it from Windows (it follows the VM's address)"
              " " + "again " * 6, ["wslnet forward 5173"], "windows")  # fmt: skip
    f = Finding(id="listeners.bind-address", status="warn", title=title, detail=detail, fix=fix)
    lines = render.for_people([f], False, False, width=80).splitlines()
    body = lines[: lines.index("")]
    assert all(len(line) <= 80 for line in body)
    assert lines[0].startswith("! tcp 198.18.5.20:5173") and lines[1].startswith("  word")
    assert lines[2].startswith("    bound to") and lines[3].startswith("    ")
    fix_at = next(i for i, line in enumerate(body) if line.startswith("    fix: "))
    assert body[fix_at + 1].startswith("         ") and body[fix_at + 1][9] != " "
    words = " ".join(line.strip() for line in body).split()
    assert (
        words
        == f"! {title} {detail} fix: {fix.text} run on Windows, in PowerShell: "
        "PS> wslnet forward 5173".split()
    )  # nothing cut or lost


WSL = Environment("wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False)


def test_as_a_user_it_says_which_checks_need_root_and_the_sudo_that_finds_wslnet() -> None:
    ids = ["environment.kind", "raw.host", "raw.mtu", "raw.syn"]
    hint = render.root_hint(WSL, ids, True, ["--host-port", "5432"])
    assert hint == (
        "3 checks need root (raw.host, raw.mtu, raw.syn): "
        'sudo "$(command -v wslnet)" check --host-port 5432'
    )
    windows = Environment("windows", None, "", None, "", "other", None, False)
    assert render.root_hint(windows, ids, True, []) is None  # never sudo on Windows
    assert render.root_hint(WSL, ids, False, []) is None  # --no-raw: asked not to
    assert render.root_hint(WSL, ["raw.host"], True, []) == (
        '1 check needs root (raw.host): sudo "$(command -v wslnet)" check'
    )


def test_the_listeners_table_wraps_its_why_at_80_columns_and_keeps_it_whole() -> None:
    from wslnet.check.verdicts.listen import judge_all
    from wslnet.facts.procnet import SocketEntry
    from wslnet.listeners import render_table

    entry = SocketEntry("tcp", "ipv4", "198.18.5.20", 5173, "0.0.0.0", 0, 10, 0, 1)
    (found,) = judge_all([entry], "nat", True, ["198.18.5.20"], owners={1: (812, "node")})
    lines = render_table([found], 80).splitlines()
    assert lines == [
        "PROTO ADDRESS                     PROCESS             WINDOWS",
        "tcp   198.18.5.20:5173            node/812            no",
        "      bound to 198.18.5.20: the relay does not forward the eth0 address (#10206)",
    ]
    wide = render_table([found], 120).splitlines()
    assert wide[1].endswith("no           bound to 198.18.5.20: the relay does not forward the")
    assert wide[2].strip() == "eth0 address (#10206)" and all(len(x) <= 120 for x in wide)


def test_the_picture_at_40_columns_wraps_and_keeps_every_verdict() -> None:
    from wslnet.check.picture import picture

    env = Environment(
        "wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": ["198.18.5.20"]}
    )
    ev = {"proto": "tcp", "address": "198.18.5.20", "port": 8000, "process": "uvicorn",
          "windows_localhost": "no", "cause": "bound-to-eth0"}  # fmt: skip
    port = Finding(id="listeners.bind-address", status="warn", title="t", evidence=ev)
    lines = picture(env, [port], 40).splitlines()
    assert all(len(line) <= 40 for line in lines)
    words = " ".join(lines).split()
    assert words[-7:] == ["(uvicorn):", "bound", "to", "eth0", "only,", "fix", "below"]
    assert lines[0] == "Windows host ? ═══ NAT ═══ WSL VM"


def test_the_locale_not_only_the_stream_decides_box_drawing() -> None:
    # Python under LANG=C runs in UTF-8 mode and coerces LC_CTYPE (PEP 538/540).
    assert render.wants_ascii("utf-8", {"LANG": "C", "LC_CTYPE": "C.UTF-8"}, True)
    assert render.wants_ascii("utf-8", {"LC_ALL": "POSIX"}, True)
    assert not render.wants_ascii("utf-8", {"LANG": "en_GB.UTF-8"}, False)
    assert not render.wants_ascii("utf-8", {"LC_CTYPE": "C.UTF-8"}, False)  # set by the user
    assert not render.wants_ascii("utf-8", {}, False)
    assert render.wants_ascii("cp437", {"LANG": "en_US.UTF-8"}, False)  # a legacy code page


def test_lang_c_under_python_e_prints_no_box_drawing_and_ascii_asks_for_it() -> None:
    """As pipx's launcher runs it: `python -E`, so PYTHONIOENCODING is ignored."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    base = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    argv = [sys.executable, "-E", "-m", "wslnet", "check", "--no-raw"]

    def out(env: dict[str, str], *more: str) -> str:
        res = subprocess.run([*argv, *more], env=env, capture_output=True, timeout=60, cwd=ROOT)
        assert res.returncode in (0, 1), res.stderr
        return res.stdout.decode("utf-8")

    assert out({**base, "LANG": "C"}).isascii()
    assert out({**base, "LANG": "C.UTF-8", "PYTHONIOENCODING": "ascii"}, "--ascii").isascii()
    assert not out({**base, "LANG": "C.UTF-8"}).isascii()  # the marks: ✓ ! •
