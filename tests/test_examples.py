"""Every file in examples/ does what it says: the config file loads, the wslnet command
lines in the container and CI examples are valid, the CI step really fails a job on a
failing check, and the Prometheus job scrapes a real forwarder with its token file."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import click
import pytest
import yaml

from tests.helpers import ROOT, forwarder
from wslnet.check.model import Finding, Fix
from wslnet.check.render import as_json
from wslnet.cli import cli
from wslnet.forward.control import configfile
from wslnet.forward.core.config import ForwardConfig
from wslnet.where import Environment

EXAMPLES = ROOT / "examples"
WSLNET_COMMAND = re.compile(r"wslnet((?: +[-\w./:=,@]+)*)")

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the CI example is a bash step with jq"
)


def wslnet_commands(text: str) -> list[list[str]]:
    """The wslnet command lines inside a shell snippet (arguments up to ;, &&, |, >)."""
    return [shlex.split(m[1]) for m in WSLNET_COMMAND.finditer(text) if m[1].strip()]


def assert_parses(argv: list[str]) -> None:
    """Click accepts these arguments (types, choices, callbacks) without running them."""
    command: click.Command = cli
    args = list(argv)
    name = "wslnet"
    while isinstance(command, click.Group):
        name = args.pop(0)
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"no command {name!r} in {argv}"
        command = found
    command.make_context(name, args).close()


def test_the_commented_config_file_loads_and_its_settings_are_valid() -> None:
    conf = configfile.load(EXAMPLES / "forward.toml")
    assert [str(r) for r in conf.rules] == [
        "tcp/localhost:5173=wsl:5173",
        "tcp/localhost:8080=wsl@Debian:3000",
        "tcp/0.0.0.0:2222=wsl:22",
        "udp/0.0.0.0:27015=wsl:27015",
    ]
    ForwardConfig(**conf.settings)  # every setting in range


def test_the_dev_container_uses_valid_wslnet_commands_and_the_host_gateway() -> None:
    doc = json.loads((EXAMPLES / "devcontainer.json").read_text())
    assert "--add-host=host.docker.internal:host-gateway" in doc["runArgs"]
    commands = wslnet_commands(doc["postStartCommand"])
    assert commands == [["check", "--json", "--no-raw"], ["ip", "host"]]
    for argv in commands:
        assert_parses(argv)


def test_the_compose_file_maps_the_host_and_runs_valid_wslnet_commands() -> None:
    doc = yaml.safe_load((EXAMPLES / "compose.yaml").read_text())
    app = doc["services"]["app"]
    assert "host.docker.internal:host-gateway" in app["extra_hosts"]
    commands = wslnet_commands(app["command"])
    assert ["ip", "host"] in commands and commands[0][:2] == ["check", "--json"]
    for argv in commands:
        assert_parses(argv)


def check_document(status: str) -> str:
    env = Environment("wsl2", "nat", "wslinfo", "Ubuntu", "6.6", "wsl2", None, False)
    findings = [
        Finding(id="host.address", status="ok", title="Windows host is 198.18.0.1"),
        Finding(id="host.reach", status=status, title="Windows 198.18.0.1:5432 is filtered",  # type: ignore[arg-type]
                fix=Fix("allow WSL through the firewall")),
    ]  # fmt: skip
    return as_json(env, findings)


@pytest.mark.parametrize(("status", "exit_code"), [("fail", 1), ("warn", 0), ("ok", 0)])
def test_the_ci_step_fails_the_job_exactly_when_a_check_fails(
    tmp_path: Path, status: str, exit_code: int
) -> None:
    (step,) = yaml.safe_load((EXAMPLES / "github-actions-check.yml").read_text())
    assert wslnet_commands(step["run"])[0] == ["check", "--json", "--no-raw"]
    fake = tmp_path / "bin" / "wslnet"  # prints a real check document; jq is the real one
    fake.parent.mkdir()
    (tmp_path / "doc.json").write_text(check_document(status))
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'doc.json'}\n[ {exit_code} = 0 ]\n")
    fake.chmod(0o755)
    res = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == exit_code, res.stderr
    if status == "fail":
        assert res.stdout.strip() == "host.reach: Windows 198.18.0.1:5432 is filtered"


@pytest.mark.lab  # starts a real forwarder
def test_the_prometheus_job_scrapes_a_real_forwarder_with_the_token_file(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    (job,) = doc["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.rsplit(":", 1)
    token_path = job["authorization"]["credentials_file"]
    assert job["authorization"]["type"] == "Bearer"
    assert token_path.endswith("/wslnet/api-token")  # $XDG_RUNTIME_DIR/wslnet/api-token
    runtime = tmp_path / "run"
    with forwarder("--api", f"{host}:{port}", env={"XDG_RUNTIME_DIR": str(runtime)}) as fwd:
        fwd.wait_event("api")
        token = (runtime / "wslnet" / "api-token").read_text().strip()
        req = urllib.request.Request(
            f"http://{target}{job['metrics_path']}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
            assert "# TYPE wslnet_connections_total counter" in resp.read().decode()


@pytest.mark.lab  # starts a real forwarder
def test_the_half_close_demo_runs() -> None:
    res = subprocess.run(
        [sys.executable, str(EXAMPLES / "half_close_demo.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "reply: server saw EOF after 2 bytes"
