"""What `wslnet check` prints about the system, pasted into a public bug report: no proxy
password anywhere (text, -v, --json, --report), and hostile text from the system shown as
text in the report, never as a live link, image or HTML. The Markdown is read back with
markdown-it (CommonMark plus tables), as GitHub would read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.helpers import ROOT, free_port
from wslnet.check import verdicts
from wslnet.check.model import Finding, fail, info, ok
from wslnet.check.report import markdown_report, windows_user
from wslnet.escape import control
from wslnet.facts import proxy
from wslnet.verdict import Fix
from wslnet.where import Environment

SECRET = "S3cret"
KERNEL = "5.15-microsoft-standard-WSL2"
ENV = Environment("wsl2", "nat", "wslinfo", "Ubuntu", KERNEL, "wsl2", None, True)


def parse(text: str) -> list[Token]:
    flat: list[Token] = []
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        flat.append(token)
        flat += token.children or []
    return flat


def live(tokens: list[Token]) -> list[str]:
    """Links, images and HTML in the parsed report, except the report's own <details>."""
    ours = ("<details><summary>evidence</summary>", "</details>")
    kinds = ("link_open", "image", "html_inline", "html_block")
    return [
        t.content or t.type for t in tokens if t.type in kinds and t.content.strip() not in ours
    ]


def headings(tokens: list[Token]) -> list[str]:
    return [tokens[n + 1].content for n, t in enumerate(tokens) if t.type == "heading_open"]


def check(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "wslnet", "check", "--no-picture", "--timeout", "0.5", *args],
        capture_output=True, text=True, timeout=30, cwd=ROOT, stdin=subprocess.DEVNULL,
        env={**clean, **env},
    )  # fmt: skip


@pytest.mark.parametrize("form", [[], ["-v"], ["--json"], ["--report"]])
def test_a_proxy_password_is_never_printed(form: list[str]) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{free_port()}"  # nothing listens: a warning
    done = check(*form, "proxy.settings", HTTPS_PROXY=url)
    assert SECRET not in done.stdout + done.stderr
    assert "user:" not in done.stdout
    if form == ["--json"]:
        (found,) = json.loads(done.stdout)["findings"]
        assert found["evidence"]["url"] == url.replace(f"user:{SECRET}", "***")
        assert found["evidence"]["masked"] == "the URL's user name and password"
    if form == ["--report"]:
        assert done.stdout.splitlines()[-1] == (
            "- masked: the URL\\'s user name and password in proxy\\.settings"
            " \\(HTTPS\\_PROXY\\) (shown as \\*\\*\\*)"
        )


def test_apt_proxy_lines_are_masked_too() -> None:
    text = f'Acquire::http::Proxy "http://me:{SECRET}@198.18.0.1:3128";\n'
    (found,) = proxy.parse_apt("/etc/apt/apt.conf.d/95proxy", text)
    assert found.url == "http://***@198.18.0.1:3128" and found.masked
    assert (found.host, found.port) == ("198.18.0.1", 3128)
    bare = proxy.parse_url("HTTP_PROXY", f"me:{SECRET}@127.0.0.1:8080")
    assert bare is not None and bare.url == "***@127.0.0.1:8080"
    finding = verdicts.proxy(found, "refused", "nat")
    assert SECRET not in json.dumps(finding.as_json())


HOSTILE = ["![a](//e.co/i)", "<details>", "fe80::1%[x](//e.co)", "<img src=x onerror=x()>",
           "# heading", "a | b", "`code` ** _x_", "line\nbreak\x1b[2J", "@me #1"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_from_the_system_is_text_in_the_report(name: str) -> None:
    findings: list[Finding] = [
        ok(f"{name} listens on 0.0.0.0:8080", detail=f"owned by {name}",
           evidence={"process": name}),
        fail(f"nameserver {name} does not answer", fix=Fix(f"edit {name}", [f"kill {name}`x"])),
    ]  # fmt: skip
    report = markdown_report(ENV, findings, {"wslnet": "0.1.0"}, {f"wsl2.{name}": name})
    tokens = parse(report)
    assert live(tokens) == []
    assert headings(tokens) == ["wslnet check report", "Findings"]
    shown = [plain(t) for t in tokens if t.type == "inline"]
    assert f"✓ ok ` `: {control(name)} listens on 0.0.0.0:8080" in shown  # no id: no runner
    assert f"owned by {control(name)}" in shown
    assert [control(f"wsl2.{name}"), control(name)] in [
        [plain(c) for c in row] for row in rows(tokens)
    ]
    commands = [t.content for t in tokens if t.type == "code_inline"]
    assert f"kill {control(name)}`x" in commands


def plain(inline: Token) -> str:
    """An inline token as a reader sees it: its text, code spans as ``."""
    return "".join(
        f"`{c.content}`" if c.type == "code_inline" else c.content for c in inline.children or []
    )


def rows(tokens: list[Token]) -> list[list[Token]]:
    """The table's rows, each as its cells' inline tokens."""
    found: list[list[Token]] = []
    for n, t in enumerate(tokens):
        if t.type == "tr_open":
            found.append([])
        elif t.type == "inline" and tokens[n - 1].type in ("td_open", "th_open"):
            found[-1].append(t)
    return found


def test_the_report_says_where_the_windows_user_name_appears() -> None:
    path = "/mnt/c/Users/Ann/.wslconfig"
    assert windows_user(path) == "Ann" and windows_user("C:\\Users\\Ann\\.wslconfig") == "Ann"
    findings = [
        ok(f"{path}: WSL reads every line"),
        info("No portproxy rules"),
        info("forwarder config", evidence={"path": "/mnt/c/Users/Ann/AppData/Roaming/x"}),
    ]
    for f, check_id in zip(
        findings, ["config.wslconfig", "windows.portproxy", "forward.config"], strict=True
    ):
        f.id = check_id
    report = markdown_report(ENV, findings, {"wslnet": "0.1.0"}, {}, windows_user(path))
    assert report.splitlines()[-3:] == [
        "### Before you paste",
        "",
        "- your Windows user name `Ann` appears in: `config.wslconfig`, `forward.config`",
    ]
