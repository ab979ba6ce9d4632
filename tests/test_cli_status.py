"""`wslnet status`: every running forwarder is found (with or without --api), the answer is
always a document with --json, and only state files that are the user's alone are read."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from tests.helpers import ROOT, assert_schema, forwarder
from wslnet.cli import cli
from wslnet.forward.control.statefile import register
from wslnet.registry import RegisteredRule, Registration

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="owners and modes are POSIX")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("WSLNET_API_TOKEN", raising=False)
    return tmp_path / "wslnet"


def test_nothing_running_is_still_a_json_document(state: Path) -> None:
    res = CliRunner().invoke(cli, ["status", "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc == {"schema": 1, "running": False, "forwarders": []}
    assert_schema(doc, "running")


def test_nothing_running_says_where_forwarders_register(state: Path) -> None:
    res = CliRunner().invoke(cli, ["status"])
    assert res.exit_code == 1
    assert res.output == f"no forwarder is running (each one registers in {state} while it runs)\n"


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_a_forwarder_that_was_killed_is_ignored_and_its_file_removed(state: Path) -> None:
    rule = RegisteredRule(1, "tcp", "9595=127.0.0.1:3000", "127.0.0.1:3000", (("127.0.0.1", 9595),))
    path = register(Registration(_dead_pid(), time.time(), (rule,)))
    res = CliRunner().invoke(cli, ["status", "--json"])
    assert (res.exit_code, json.loads(res.output)["running"]) == (1, False)
    assert not path.exists()


def test_every_running_forwarder_is_listed_with_or_without_api(state: Path) -> None:
    """Two real forwarders, one without --api: both are found, each with its pid and rule;
    each removes its registration when it exits."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(state.parent)}
    argvs = [
        ["forward", "127.0.0.1:0=127.0.0.1:9"],
        ["forward", "127.0.0.1:0=127.0.0.1:7", "--api", "127.0.0.1:0"],
    ]
    out = subprocess.DEVNULL
    procs = [
        subprocess.Popen([sys.executable, "-m", "wslnet", *a], env=env, cwd=ROOT, stdout=out)
        for a in argvs
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(state.glob("forward-*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        res = CliRunner().invoke(cli, ["status", "--json"])
        doc = json.loads(res.output)
        assert_schema(doc, "running")
        by_pid = {f["pid"]: f for f in doc["forwarders"]}
        assert res.exit_code == 0 and set(by_pid) == {p.pid for p in procs}
        plain, served = by_pid[procs[0].pid], by_pid[procs[1].pid]
        assert plain["api"] is None and plain["rules"][0]["target"] == "127.0.0.1:9"
        assert plain["rules"][0]["listen"][0][0] == "127.0.0.1"
        assert served["status"]["rules"][0]["target"] == "127.0.0.1:7"  # its live status
        text = CliRunner().invoke(cli, ["status"]).output
        port = plain["rules"][0]["listen"][0][1]
        assert f"wslnet forward, pid {procs[0].pid}, no --api\n" in text
        assert f"  #1 tcp 127.0.0.1:{port} -> 127.0.0.1:9\n" in text
        assert f"wslnet forward, pid {procs[1].pid}, API {served['api']}, up " in text
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
    if sys.platform != "win32":  # a clean exit removes its own file
        assert list(state.glob("forward-*.json")) == []
    # Windows' terminate() is TerminateProcess (no exit code runs): the next reader
    # removes a file whose process is gone.
    assert CliRunner().invoke(cli, ["status"]).exit_code == 1
    assert list(state.glob("forward-*.json")) == []


def _rules_registered(pid: int, want: int, timeout: float = 15.0) -> list[dict[str, object]]:
    """The rules `wslnet status --json` lists for `pid`, once there are `want` of them."""
    deadline = time.monotonic() + timeout
    while True:
        doc = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
        rules: list[dict[str, object]] = next(
            (f["rules"] for f in doc["forwarders"] if f["pid"] == pid), []
        )
        if len(rules) == want or time.monotonic() > deadline:
            return rules
        time.sleep(0.1)


def _rule(target: int) -> str:
    return f'[[forward]]\nlisten = "127.0.0.1:0"\ntarget = "127.0.0.1:{target}"\n'


def test_the_registration_follows_the_rules_as_they_change(state: Path, tmp_path: Path) -> None:
    """Rules added and removed after the start (a reload here; the API and auto-forward go
    through the same table) are what `status` and the doctor read, not the rules the
    forwarder started with: the doctor takes wslnet's own listeners for infrastructure."""
    conf = tmp_path / "forward.toml"
    conf.write_text(_rule(9))
    env = {"XDG_RUNTIME_DIR": str(state.parent)}
    with forwarder("--config", str(conf), env=env) as fwd:
        pid = fwd.proc.pid
        assert [r["target"] for r in _rules_registered(pid, 1)] == ["127.0.0.1:9"]
        tmp = tmp_path / "next.toml"
        tmp.write_text(_rule(9) + _rule(7))
        os.replace(tmp, conf)
        fwd.wait_event("reloaded", timeout=10)
        rules = _rules_registered(pid, 2)
        assert sorted(str(r["target"]) for r in rules) == ["127.0.0.1:7", "127.0.0.1:9"]
        added = next(r for r in rules if r["target"] == "127.0.0.1:7")
        listen = added["listen"]
        assert isinstance(listen, list) and listen[0][0] == "127.0.0.1" and listen[0][1] > 0
        tmp.write_text(_rule(7))
        os.replace(tmp, conf)
        fwd.wait_event("reloaded", count=2, timeout=10)
        rules = _rules_registered(pid, 1)
        assert [(r["target"], r["listen"]) for r in rules] == [("127.0.0.1:7", listen)]
        fwd.signal(signal.SIGTERM)
        code = fwd.wait()
    if sys.platform != "win32":  # there terminate() is TerminateProcess: no clean exit
        assert code == 0 and list(state.glob("forward-*.json")) == []


class _Api(http.server.BaseHTTPRequestHandler):
    """A forwarder's API that wants a token: records what each request sent."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = b'{"schema": 1, "error": "unauthorized"}'
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[int, list[str | None]]]:
    seen: list[str | None] = []
    handler = type("Api", (_Api,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_live_api_without_a_token_here_says_the_token_is_missing_and_where(
    state: Path, api: tuple[int, list[str | None]]
) -> None:
    port, seen = api
    res = CliRunner().invoke(cli, ["status", "--api", str(port)])
    assert res.exit_code == 1
    assert res.output == (
        f"wslnet: http://127.0.0.1:{port} wants the API token, and none was found: set "
        "WSLNET_API_TOKEN, or run this as the user who started the forwarder (its token "
        f"is looked for in {state})\n"
    )
    assert seen == [None]


@POSIX_ONLY
def test_state_in_another_users_folder_is_never_trusted_nor_its_token_sent(
    state: Path, api: tuple[int, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: the folder and its files belong to someone else (we pretend to be
    another uid): their forwarder is not listed, and its token never leaves."""
    port, seen = api
    url = f"http://127.0.0.1:{port}"
    register(Registration(os.getpid(), time.time(), (), url, "their-secret"))
    state.joinpath("api.json").write_text(json.dumps({"url": url, "pid": os.getpid()}))
    owner = state.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 4242)
    res = CliRunner().invoke(cli, ["status", "--json"])
    assert json.loads(res.output) == {"schema": 1, "running": False, "forwarders": []}
    res = CliRunner().invoke(cli, ["status", "--api", str(port)])
    assert "wants the API token, and none was found" in res.output
    res = CliRunner().invoke(cli, ["dashboard", "--no-browser"])
    assert res.exit_code == 1
    assert res.output == (
        f"wslnet: {state} belongs to another user (uid {owner}): not trusted; remove it, "
        "or set XDG_RUNTIME_DIR to a private folder\n"
    )
    assert "Bearer their-secret" not in seen and seen == [None]
