"""`wslnet check --fix`'s pure parts (issue 25): which fixes are offered, what an answer
picks, the one elevated script and its launcher, the results read back, the journal and
the undo, and the before/after proof. No I/O: the lab tests (test_fix_lab) run it all."""

from __future__ import annotations

import shlex

import pytest

from wslnet.check.fix import edit, journal, plan, script, session, shell, text
from wslnet.check.model import Finding, fail, ok, warn
from wslnet.check.verdicts.config import WslconfigFile, config_mode, wslconfig_file
from wslnet.check.verdicts.dns import restart_resolved, restore_resolv_conf
from wslnet.check.verdicts.firewall import firewall_fix, hyperv_fix
from wslnet.check.verdicts.windows import readd_portproxy, start_ip_helper
from wslnet.errors import UsageError
from wslnet.facts.windows import PortProxy
from wslnet.facts.wslconfig import parse
from wslnet.verdict import Action, Fix


def _action(fix: Fix) -> Action:
    assert fix.action is not None
    return fix.action


FW = _action(firewall_fix())


def stamped(f: Finding, check_id: str) -> Finding:
    f.id = check_id
    return f


def test_one_shared_fix_is_offered_once_for_every_finding_it_answers() -> None:
    filtered = stamped(fail("filtered", fix=firewall_fix(), evidence={"port": 5432}), "host.reach")
    profile = stamped(warn("profile blocks", fix=firewall_fix()), "windows.firewall")
    advice = stamped(fail("bind it", fix=Fix("bind 0.0.0.0")), "listeners.bind-address")
    fine = stamped(ok("fine", fix=firewall_fix()), "host.reach")
    (item,) = plan.applicable([filtered, profile, advice, fine])
    assert (item.number, item.action, item.findings) == (1, FW, (filtered, profile))
    assert item.checks == ("host.reach", "windows.firewall", "raw.host", "raw.syn")


@pytest.mark.parametrize(
    ("answer", "picked"),
    [("y\n", (1, 2, 3)), ("YES", (1, 2, 3)), ("", ()), ("n", ()), ("no\n", ()),
     ("1, 3", (1, 3)), ("3 1 3", (3, 1)), ("list", plan.LIST), ("l", plan.LIST)],
)  # fmt: skip
def test_an_answer_picks_all_none_some_or_asks_for_the_list(
    answer: str, picked: tuple[int, ...] | str
) -> None:
    assert plan.parse_answer(answer, 3) == picked


@pytest.mark.parametrize("answer", ["4", "0", "1,x", "maybe"])
def test_an_answer_that_names_no_fix_is_refused(answer: str) -> None:
    with pytest.raises(plan.AnswerError, match="answer y, n, list, or numbers such as 1,2"):
        plan.parse_answer(answer, 3)


def test_windows_administrator_actions_batch_into_one_before_root_ones() -> None:
    root = Action("here-root", "restart resolved", ("systemctl restart systemd-resolved",),
                  ("true",), "nothing")  # fmt: skip
    helper = start_ip_helper("Manual")
    found = plan.batches([root, FW, helper])
    assert [(b.where, b.actions) for b in found] == [
        ("windows-admin", (FW, helper)),
        ("here-root", (root,)),
    ]
    assert text.running(found[0]) == "  (one Windows administrator prompt for 2 fixes)"
    assert text.running(found[1]) == "  (sudo once for 1 fix)"


def test_the_elevated_script_logs_each_action_and_checks_native_exit_codes() -> None:
    helper = start_ip_helper("Disabled")
    body = script.powershell_script((helper,), "C:\\Users\\Jane O'Doe\\x.log")
    assert body.split("\r\n") == [
        "# wslnet check --fix: 1 action(s); each logs its result below",
        "$ErrorActionPreference = 'Stop'",
        "$log = 'C:\\Users\\Jane O''Doe\\x.log'",
        "# action 1: start the IP Helper service (iphlpsvc), start type Automatic",
        "try {",
        "    $global:LASTEXITCODE = 0",
        "    Set-Service iphlpsvc -StartupType Automatic",
        '    if ($LASTEXITCODE) { throw "exit code $LASTEXITCODE" }',
        "    $global:LASTEXITCODE = 0",
        "    Start-Service iphlpsvc",
        '    if ($LASTEXITCODE) { throw "exit code $LASTEXITCODE" }',
        "    Add-Content -LiteralPath $log -Encoding UTF8 -Value 'ok 1'",
        "} catch {",
        "    Add-Content -LiteralPath $log -Encoding UTF8 -Value ('error 1: ' + $_)",
        "}",
        "",
    ]


def test_the_launcher_quotes_a_path_with_a_space_and_a_quote_for_start_process() -> None:
    argv = script.elevated("C:\\Users\\Jane O'Doe\\AppData\\Local\\Temp\\f.ps1")
    assert argv == [
        "powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
        "Start-Process powershell.exe -Verb RunAs -Wait -ArgumentList '-NoProfile',"
        "'-NonInteractive','-ExecutionPolicy','Bypass','-File',"
        "'\"C:\\Users\\Jane O''Doe\\AppData\\Local\\Temp\\f.ps1\"'",
    ]  # fmt: skip


def test_root_actions_say_sudo_once_and_not_when_already_root() -> None:
    body = script.sh_script((Action("here-root", "a", ("x", "y"), (), ""),))
    assert body == "if ( x && y ); then echo 'ok 1'; else echo \"error 1: exit code $?\"; fi\n"
    assert script.sh_argv(body, True, False) == ["sudo", "sh", "-c", body]
    assert script.sh_argv(body, True, True) == ["sh", "-c", body]


def test_results_read_back_per_action_and_a_missing_one_says_why() -> None:
    log = "\ufeffok 1\r\nerror 3: Access is denied.\r\n"
    assert script.results(log, 3, "did not run") == [None, "did not run", "Access is denied."]


def test_the_journal_round_trips_and_undo_goes_back_one_batch_at_a_time() -> None:
    stale = PortProxy("v4tov4", "0.0.0.0", 2222, 2222, "198.18.5.77", 22, 22)
    readd = readd_portproxy(stale, "198.18.5.20")
    assert readd is not None
    first = journal.Record(
        "fix", "b1", "2024-05-01T10:00:00+02:00", (FW,), ("host.reach",), (5432,)
    )
    second = journal.Record("fix", "b2", "2024-05-01T10:05:00+02:00", (readd,))
    undo2 = journal.Record("undo", "b2", "2024-05-01T10:06:00+02:00", (plan.reverse(readd),))
    lines = first.line() + "{torn\n" + second.line() + undo2.line()
    records = journal.parse(lines)
    assert records == [first, second, undo2]
    assert journal.last_undoable(records) == first
    assert journal.last_undoable(records[:2]) == second
    assert journal.last_undoable([*records, journal.Record("undo", "b1", "t", ())]) is None


def test_the_undo_of_a_stale_portproxy_puts_the_old_target_back() -> None:
    stale = PortProxy("v4tov4", "0.0.0.0", 2222, 2222, "198.18.5.77", 22, 22)
    action = readd_portproxy(stale, "198.18.5.20")
    assert action is not None
    back = plan.reverse(action)
    assert back.commands == (
        "netsh interface portproxy delete v4tov4 listenport=2222 listenaddress=0.0.0.0",
        "netsh interface portproxy add v4tov4 listenport=2222 listenaddress=0.0.0.0 "
        "connectport=22 connectaddress=198.18.5.77",
    )
    assert (back.summary, back.undo_summary) == (
        "restore it for 198.18.5.77",
        "delete portproxy 0.0.0.0:2222, add it for 198.18.5.20",
    )
    ranged = PortProxy("v4tov4", "0.0.0.0", 2000, 2010, "198.18.5.77", 2000, 2010)
    assert readd_portproxy(ranged, "198.18.5.20") is None  # netsh has no add for a range


def test_hyperv_undo_restores_the_action_it_had() -> None:
    action = hyperv_fix("Block").action
    assert action is not None
    assert action.undo == (
        "Set-NetFirewallHyperVVMSetting -Name '{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}' "
        "-DefaultInboundAction Block",
    )


def test_the_proof_pairs_by_port_and_a_finding_still_failing_is_not_worked() -> None:
    before = stamped(fail("5432 is filtered", fix=firewall_fix(),
                          evidence={"port": 5432, "state": "filtered"}), "host.reach")  # fmt: skip
    (item,) = plan.applicable([before])
    now_open = stamped(ok("5432 is open", evidence={"port": 5432, "state": "open"}), "host.reach")
    other = stamped(fail("80 is filtered", evidence={"port": 80}), "host.reach")
    (proof,) = plan.prove(item, [other, now_open])
    assert (proof.after, proof.worked, proof.was) == (now_open, True, "filtered")
    still = stamped(fail("5432 is filtered", evidence={"port": 5432}), "host.reach")
    (proof,) = plan.prove(item, [still])
    assert not proof.worked
    assert text.proof(item, [proof], None, ascii_only=True) == [
        "x 1. allow inbound on vEthernet (WSL): applied, but host.reach still finds: "
        "5432 is filtered"
    ]


def test_a_finding_named_by_its_title_is_gone_or_shown_by_the_checks_ok_line() -> None:
    helper = stamped(fail("IP Helper is stopped", fix=Fix("start", [], "windows-admin",
                                                        start_ip_helper("Manual"))),
                     "windows.portproxy")  # fmt: skip
    (item,) = plan.applicable([helper])
    (gone,) = plan.prove(item, [stamped(Finding(status="info", title="rule"), "windows.portproxy")])
    assert (gone.after, gone.worked) == (None, True)
    assert text.proof(item, [gone], None, ascii_only=False) == [
        "✓ windows.portproxy: no longer reported      was: fail"
    ]


def test_consent_options_map_to_one_config_and_conflicts_are_usage_errors() -> None:
    assert session.config(False, False, False, False, False) is None
    assert session.config(True, False, False, False, False) == session.FixConfig(False, "ask")
    assert session.config(False, True, False, True, True) == session.FixConfig(
        True, "dry-run", True
    )
    with pytest.raises(UsageError, match="give one"):
        session.config(True, True, True, False, False)
    with pytest.raises(UsageError, match="not with --json or --report"):
        session.config(True, False, False, False, False, True)


class Answers:
    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.lines: list[str] = []

    def echo(self, line: str) -> None:
        self.lines.append(line)

    def ask(self, question: str) -> str | None:
        self.lines.append(question)
        return self.answers.pop(0)


def test_list_shows_the_commands_then_asks_again_and_no_stdin_is_exit_2() -> None:
    item = plan.Item(1, FW, ())
    console = Answers("list\n", "1\n")
    assert session._choose([item], session.FixConfig(False, "ask"), console) == (1,)
    assert console.lines[1:3] == [
        "Fixes wslnet can apply:",
        "  1. [Windows, Administrator] allow inbound on vEthernet (WSL)  (undo: remove the rule)",
    ]
    assert console.lines[3].startswith("       PS> New-NetFirewallRule -Name 'wslnet-wsl-inbound'")
    with pytest.raises(UsageError) as caught:
        session._choose([item], session.FixConfig(False, "ask"), Answers(None))
    assert caught.value.exit_code == 2
    assert session._choose([item], session.FixConfig(False, "yes"), Answers()) == (1,)


# --- .wslconfig edits (pure): as WSL's parser reads the file, the diff before consent ---

TYPO_FILE = "[wsl2]\r\nmemory=4GB\r\ndnsTunneling = ture   # on\r\nlocalhostForwarding=false\r\n"


def test_a_value_is_replaced_in_place_keeping_spacing_comment_and_crlf() -> None:
    assert edit.set_value(TYPO_FILE, 3, "true") == TYPO_FILE.replace("ture", "true")
    assert edit.set_value('[wsl2]\nkernel="C:\\\\a#b" # k\n', 2, "x") == "[wsl2]\nkernel=x # k\n"
    assert edit.set_value("[wsl2]\nswap=4\\\n GB\n", 2, "1GB") is None  # a continued value
    assert edit.set_value("[wsl2]\n", 1, "x") is None  # a header, not key=value


def test_set_key_changes_the_first_line_of_its_section_or_adds_one_where_wsl_reads_it() -> None:
    text = "[experimental]\nnetworkingMode=nat\n[wsl2]\nmemory=4GB\n"
    assert edit.set_key(text, "wsl2", "networkingMode", "mirrored") == (
        "[experimental]\nnetworkingMode=nat\n[wsl2]\nnetworkingMode=mirrored\nmemory=4GB\n"
    )
    assert edit.set_key("[WSL2]\nDnsTunneling=false\n", "wsl2", "dnsTunneling", "true") == (
        "[WSL2]\nDnsTunneling=true\n"  # keys and sections are case-insensitive
    )
    assert edit.set_key("memory=4GB", "wsl2", "localhostForwarding", "true") == (
        "memory=4GB\n[wsl2]\nlocalhostForwarding=true\n"  # a key above any header is ignored
    )
    added = edit.set_key("", "wsl2", "dnsTunneling", "true")
    assert parse(added).flag("wsl2.dnsTunneling") is True and parse(added).problems == []


def test_the_wslconfig_fix_corrects_every_typo_in_one_edit_with_a_backup_and_a_diff() -> None:
    text = TYPO_FILE + "[experimental]\nhostAddresLoopback=true\n"
    path = "/mnt/c/Users/Jane O'Doe/.wslconfig"
    file = WslconfigFile(path, text, "nat")
    found = wslconfig_file(path, parse(text), file) + config_mode(parse(text), "nat", file)
    actions = {f.fix.action for f in found if f.fix is not None and f.fix.action is not None}
    (action,) = actions  # every finding the edit answers carries the same one
    assert action.summary == (
        "edit .wslconfig: dnsTunneling=true, hostAddresLoopback -> hostAddressLoopback, "
        "localhostForwarding=true"
    )
    new = (
        "[wsl2]\r\nmemory=4GB\r\ndnsTunneling = true   # on\r\nlocalhostForwarding=true\r\n"
        "[experimental]\nhostAddressLoopback=true\n"
    )
    assert parse(new).problems == []
    assert (action.where, action.needs_shutdown) == ("here", True)
    backup = edit.backup_name(path, text)
    q = "'/mnt/c/Users/Jane O'\"'\"'Doe/.wslconfig'"
    assert action.commands[1:] == (
        f"cp {q} {q[:-1]}{backup[len(path) :]}'",
        f"printf %s {shlex.quote(new)} > {q}",
    )
    assert action.commands[0].endswith(f" | cmp -s - {q}")  # never over an edit made since
    assert action.undo == (f"mv -f {q[:-1]}{backup[len(path) :]}' {q}",)
    assert action.diff[2:] == (
        "@@ -1,6 +1,6 @@",
        " [wsl2]",
        " memory=4GB",
        "-dnsTunneling = ture   # on",
        "-localhostForwarding=false",
        "+dnsTunneling = true   # on",
        "+localhostForwarding=true",
        " [experimental]",
        "-hostAddresLoopback=true",
        "+hostAddressLoopback=true",
    )
    lines = text_offer(action)
    assert lines[2:4] == [f"       --- {path}", f"       +++ {path} (after)"]
    assert lines[-1] == "       applies after `wsl --shutdown`, which is asked for on its own"


def text_offer(action: Action) -> list[str]:
    return text.offer([plan.Item(1, action, ())])


def test_natively_on_windows_the_edit_is_powershell_as_the_user_without_a_bom() -> None:
    path = "C:\\Users\\Jane O'Doe\\.wslconfig"
    text_ = "[wsl2]\nnetworkingMode=mirorred\n"
    (finding,) = wslconfig_file(path, parse(text_), WslconfigFile(path, text_, None, True))
    assert finding.fix is not None and finding.fix.action is not None
    action = finding.fix.action
    backup = edit.backup_name(path, text_).replace("'", "''")
    assert action.where == "windows"
    assert action.commands[1:] == (
        f"Copy-Item -LiteralPath 'C:\\Users\\Jane O''Doe\\.wslconfig' -Destination '{backup}'",
        "[IO.File]::WriteAllText('C:\\Users\\Jane O''Doe\\.wslconfig', "
        "'[wsl2]\nnetworkingMode=mirrored\n')",
    )
    assert action.undo == (
        f"Move-Item -Force -LiteralPath '{backup}' -Destination "
        "'C:\\Users\\Jane O''Doe\\.wslconfig'",
    )


def test_a_line_wsl_skips_for_another_reason_gets_no_edit() -> None:
    text_ = "[wsl2]\ndns-tunneling=true\n;comment\n"
    found = wslconfig_file("/w", parse(text_), WslconfigFile("/w", text_, "nat"))
    assert [f.fix.action for f in found if f.fix is not None] == [None, None]


def test_a_shutdown_is_its_own_question_and_yes_alone_never_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(shell, "shutdown", lambda: ran.append("shutdown"))
    console = Answers("n\n")
    session._shutdown(session.FixConfig(False, "ask"), console)
    assert console.lines == [
        text.SHUTDOWN_QUESTION,
        "These changes apply after `wsl --shutdown`: run it from Windows when ready; it stops "
        "every WSL distribution, this one too",
    ]
    console = Answers()
    session._shutdown(session.FixConfig(False, "yes"), console)
    assert console.lines[0].startswith(
        "These changes apply after `wsl --shutdown`: run it "
        "from Windows when ready (or give --shutdown with --yes)"
    )
    assert ran == []
    session._shutdown(session.FixConfig(False, "yes", shutdown=True), Answers())
    session._shutdown(session.FixConfig(False, "ask"), Answers("y\n"))
    assert ran == ["shutdown", "shutdown"]
    with pytest.raises(UsageError, match="--shutdown goes with --fix, --yes or --undo"):
        session.config(False, False, False, False, False, shutdown=True)
    with pytest.raises(UsageError, match="--shutdown goes with"):
        session.config(True, True, False, False, False, shutdown=True)


# --- DNS inside WSL ---


def test_restarting_resolved_is_one_sudo_and_its_undo_says_there_is_nothing_to_undo() -> None:
    action = restart_resolved()
    body = script.sh_script((action,))
    assert script.sh_argv(body, True, False) == ["sudo", "sh", "-c", body]
    assert "systemctl restart systemd-resolved" in body
    assert text.undone(plan.reverse(action), None, False) == (
        "• restart systemd-resolved: nothing to undo: a restart changes no setting"
    )
    assert text.dry_run(plan.batches([action]))[-1] == (
        "    #   undo: nothing to undo: a restart changes no setting"
    )


def test_a_dangling_link_is_replaced_by_wsls_file_and_the_link_kept_for_the_undo() -> None:
    action = restore_resolv_conf("198.18.0.1")
    assert action.where == "here-root"
    assert action.commands[:2] == (
        "test ! -e /etc/resolv.conf.wslnet-backup -a ! -L /etc/resolv.conf.wslnet-backup",
        "mv /etc/resolv.conf /etc/resolv.conf.wslnet-backup",
    )
    assert action.commands[2].endswith("nameserver 198.18.0.1\n' > /etc/resolv.conf")
    assert action.undo == ("rm -f /etc/resolv.conf",
                           "mv /etc/resolv.conf.wslnet-backup /etc/resolv.conf")  # fmt: skip


def test_a_fix_whose_check_still_fails_under_another_title_did_not_work() -> None:
    link = stamped(fail("/etc/resolv.conf is a dangling link",
                        fix=Fix("x", [], "here-root", restore_resolv_conf("198.18.0.1"))),
                   "dns.resolver")  # fmt: skip
    (item,) = plan.applicable([link])
    dead = stamped(fail("Resolver 198.18.0.1 does not answer: timeout"), "dns.resolver")
    (proof,) = plan.prove(item, [dead])
    assert (proof.after, proof.worked) == (dead, False)
