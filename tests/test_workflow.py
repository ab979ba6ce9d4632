"""The public repository's CI workflow: what it runs, and that `make lint`'s actionlint
would catch a broken one (it cannot run here; actionlint is the check)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_the_workflow_runs_make_test_on_linux_and_the_windows_tier_on_two_pythons() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    linux, windows = doc["jobs"]["linux"], doc["jobs"]["windows"]
    assert any("make test" in s.get("run", "") for s in linux["steps"])
    assert windows["runs-on"] == "windows-latest"
    assert windows["strategy"]["matrix"]["python"] == ["3.10", "3.13"]
    runs = " ".join(s.get("run", "") for s in windows["steps"])
    assert (
        "mypy wslnet tests" in runs
        and 'pytest -m "not lab"' in runs
        and 'wslnet", "forward"' in runs
    )


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="actionlint comes as a wheel for Linux x86_64 only (pyproject's dev extra)",
)
def test_actionlint_flags_a_broken_workflow(tmp_path: Path) -> None:
    actionlint = Path(sys.executable).parent / "actionlint"
    assert actionlint.exists() or shutil.which("actionlint"), "make setup installs actionlint"
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: [}"))
    res = subprocess.run([str(actionlint), str(broken)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "ci.yml" in res.stdout
    good = subprocess.run(
        [str(actionlint), str(WORKFLOW)], capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stdout
