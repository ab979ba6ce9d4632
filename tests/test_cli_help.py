"""Help and completion a new user meets: `check --help` has examples, `wslnet check
li<TAB>` completes check ids and families, the README's reference lists every command."""

from __future__ import annotations

import os
import subprocess
import sys

import click
from click.testing import CliRunner

from tests.helpers import ROOT
from wslnet.cli import cli


def test_check_help_has_examples_that_parse() -> None:
    res = CliRunner().invoke(cli, ["check", "--help"])
    assert res.exit_code == 0
    examples = res.output.split("Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "    wslnet check listeners --port 5173    (can Windows reach my dev server?)" in (
        examples
    )
    check = cli.get_command(click.Context(cli), "check")
    assert check is not None
    for line in examples:
        argv = line.split("  (")[0].split("|")[0].split()  # less the comment and the pipe
        check.make_context("check", argv[argv.index("check") + 1 :]).close()


def complete(words: str) -> list[str]:
    """What bash gets back for `wslnet WORDS<TAB>` (click's bash_complete protocol)."""
    env = {
        **os.environ,
        "_WSLNET_COMPLETE": "bash_complete",
        "COMP_WORDS": f"wslnet {words}",
        "COMP_CWORD": str(len(words.split()) + (1 if words.endswith(" ") else 0)),
    }
    res = subprocess.run(
        [sys.executable, "-m", "wslnet"], env=env, capture_output=True, text=True,
        timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return [line.split(",", 1)[1] for line in res.stdout.splitlines()]


def test_check_ids_and_families_complete() -> None:
    assert complete("check li") == ["listeners", "listeners.bind-address"]
    assert complete("check raw.") == ["raw.host", "raw.mtu", "raw.syn"]
    assert "dns" in complete("check ") and "host.reach" in complete("check ")


def test_the_readme_reference_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Reference", 1)[1].split("**Exit codes**", 1)[0]
    listed = {
        line.split("`")[1].split()[1] for line in table.splitlines() if line.startswith("| `")
    }
    assert set(cli.commands) <= listed, set(cli.commands) - listed


def test_the_readme_installs_from_what_exists_today() -> None:
    install = (ROOT / "README.md").read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "pipx install wslnet\n" not in install  # not published yet
    assert "pipx install ./wslnet" in install and "git+" in install
    assert "wslnet[fast]" in install and "uvloop" in install
