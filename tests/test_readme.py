"""The README's commands work: every `wslnet` command line in its fenced blocks is valid,
and each one is run here, inside an empty network namespace so that nothing it does can
leave this machine. Commands for other programs are listed and accounted for."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from tests.helpers import ROOT
from wslnet.cli import cli

pytestmark = pytest.mark.lab  # runs real commands in a network namespace (root)

FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)
PROMPT = re.compile(r"^(?:\$ |PS> )?(?:sudo )?(wslnet\b.*)$")
# What the README shows that is not wslnet itself, and why it is not run here.
OTHERS = {
    "pipx install": "installs from the package index",
    "git clone": "developer set-up",
    "make ": "developer set-up (make test runs this file)",
    "New-NetFirewallRule": "Windows PowerShell",
    "eval ": "shell completion: tested below",
    "_WSLNET_COMPLETE": "shell completion: tested below",
}


def readme_commands() -> list[list[str]]:
    commands = []
    for block in FENCE.findall((ROOT / "README.md").read_text()):
        # A block with prompts shows output too: only its prompted lines are commands.
        prompted = any(ln.lstrip().startswith(("$ ", "PS> ")) for ln in block.splitlines())
        for raw in block.splitlines():
            if prompted and not raw.lstrip().startswith(("$ ", "PS> ")):
                continue
            m = PROMPT.match(raw.strip())
            if not m or "..." in m[1] or "RULE" in m[1] or m[1].startswith("wslnet/"):
                continue  # output lines, synopses, the source tree
            line = re.sub(r"\s+#.*$", "", m[1])  # a trailing comment
            commands.append(shlex.split(line)[1:])
    return commands


def other_lines() -> list[str]:
    lines = []
    for block in FENCE.findall((ROOT / "README.md").read_text()):
        for raw in block.splitlines():
            text = raw.strip().removeprefix("$ ").removeprefix("PS> ")
            if any(text.startswith(k) for k in OTHERS):
                lines.append(text)
    return lines


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_a_user_needs() -> None:
    shown = {" ".join(c[:2]) for c in COMMANDS}
    assert {"check listeners", "ip host", "forward 5173", "status", "--version"} - shown == set()
    assert other_lines()  # install and firewall lines are there, and accounted for above


def parse(argv: list[str]) -> click.Command:
    command: click.Command = cli
    args = list(argv)
    name = "wslnet"
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name = args.pop(0)
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"README: no command {name!r} in {argv}"
        command = found
    command.make_context(name, args).close()
    return command


def isolated(netns: tuple[str, ...], argv: list[str]) -> list[str]:
    """The command in a new, empty network namespace with only loopback up."""
    script = 'ip link set lo up && exec "$@"'
    return [*netns, "sh", "-c", script, "sh", sys.executable, "-m", "wslnet", *argv]


FAKE_WSL = """#!/bin/sh
# wsl.exe of a Windows whose default distribution runs, with eth0 at 198.18.5.20.
case "$*" in
  "-l --running -q") echo Ubuntu ;;
  "-l -v") printf '  NAME      STATE           VERSION\\n* Ubuntu    Running         2\\n' ;;
  *"ip -4 -o addr show"*) echo "2: eth0 inet 198.18.5.20/20 scope global eth0" ;;
  *) while sleep 1; do :; done ;;  # --auto's watcher: a VM with nothing to report
esac
"""


FAKE_TOOL = '#!/bin/sh\ncase "$*" in *is-active*|*Query*) echo active ;; esac\n'


@pytest.fixture(scope="module")
def fake_wsl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Windows' wsl.exe, and the service tools (schtasks.exe, systemctl) that succeed
    without touching this machine."""
    folder = tmp_path_factory.mktemp("fake-windows")
    for name, text in (
        ("wsl.exe", FAKE_WSL),
        ("schtasks.exe", FAKE_TOOL),
        ("systemctl", FAKE_TOOL),
    ):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    config = folder / "config" / "wslnet" / "forward.toml"  # `service install` reads it
    config.parent.mkdir(parents=True)
    config.write_text("# the README's service, with no rules of its own\n")
    return folder


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_each_readme_command_parses_and_runs(
    argv: list[str], fake_wsl: Path, netns: tuple[str, ...]
) -> None:
    if argv and argv[0] not in ("--version", "--help"):
        parse(argv)
    # The README's forward commands run on Windows: wsl.exe answers for a running VM.
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": "/nonexistent-wslnet-doc",
        "NO_COLOR": "1",
        "PATH": f"{fake_wsl}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(fake_wsl / "config"),  # `service install` writes its unit here
    }
    if argv[:1] == ["forward"]:
        proc = subprocess.Popen(
            isolated(netns, argv), cwd=ROOT, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            time.sleep(1.5)  # long enough to bind every rule, or to fail
            assert proc.poll() is None, proc.communicate(timeout=5)[1]
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert "started" in err and "internal" not in err
        return
    res = subprocess.run(
        isolated(netns, argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode in (0, 1, 2), res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    if argv[:1] == ["probe"]:
        assert res.returncode in (1, 2)  # nothing to probe in an empty namespace
    elif argv[:1] != ["status"]:
        assert res.returncode in (0, 1), res.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_are_produced(shell: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "wslnet"],
        env={**os.environ, "_WSLNET_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert res.returncode == 0 and "_WSLNET_COMPLETE" in res.stdout
