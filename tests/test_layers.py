"""The layers only look down, measured by what importing each module really loads (in a
fresh interpreter, so nothing another test imported counts):

    forward/control  ->  forward/core  ->  forward/data
    check/           ->  listeners.py, facts/, probe/, system.py

The data path knows no rule, policy or log (nothing of the core); the core and the data
path never load the control plane; the doctor loads nothing of the forwarder's control
plane; the parsers and the listener table load nothing of the doctor. Heavy libraries
(aiohttp, scapy) load only where they are used."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import wslnet
import wslnet.check
import wslnet.facts
import wslnet.forward.core
import wslnet.forward.data

_LOADED = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def modules(package: ModuleType) -> list[str]:
    found = [f"{package.__name__}.{m.name}" for m in pkgutil.walk_packages(package.__path__)]
    # Linux-only modules assert the platform when imported.
    return [m for m in found if sys.platform == "linux" or not m.endswith(("epoll", "splice"))]


def loaded_after_importing(names: list[str]) -> set[str]:
    res = subprocess.run(
        [sys.executable, "-c", _LOADED, *names], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout))


def under(loaded: set[str], *prefixes: str) -> set[str]:
    return {m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes)}


HEAVY = ("aiohttp", "scapy")

# (what is imported, what it must never load)
RULES = [
    pytest.param(
        modules(wslnet.forward.data),
        ("wslnet.forward.core", "wslnet.forward.control", *HEAVY),
        id="the data path loads nothing of the core or the control plane",
    ),
    pytest.param(
        modules(wslnet.forward.core),
        ("wslnet.forward.control", *HEAVY),
        id="the core loads nothing of the control plane",
    ),
    pytest.param(
        modules(wslnet.check),
        ("wslnet.forward", *HEAVY),
        id="the doctor loads nothing of the forwarder",
    ),
    pytest.param(
        ["wslnet.cli"],
        ("wslnet.forward.control", "wslnet.check", *HEAVY),
        id="the CLI loads a command's modules when it runs, not at import",
    ),
    pytest.param(
        [*modules(wslnet.facts), "wslnet.listeners"],
        ("wslnet.check", "wslnet.forward", *HEAVY),
        id="the parsers and the listener table load nothing of the doctor",
    ),
]


@pytest.mark.parametrize(("imported", "never"), RULES)
def test_each_layer_loads_only_what_is_below_it(imported: list[str], never: tuple[str]) -> None:
    assert imported
    loaded = loaded_after_importing(imported)
    assert set(imported) <= loaded
    assert under(loaded, *never) == set()


PACKAGE = Path(wslnet.__file__).parent

# The same rules for the imports a module makes later, inside a function (lazily).
STATIC_RULES = [
    ("forward/data", ("wslnet.forward.core", "wslnet.forward.control")),
    ("forward/core", ("wslnet.forward.control",)),
    ("check", ("wslnet.forward.control",)),
    ("facts", ("wslnet.check", "wslnet.forward")),
    ("listeners.py", ("wslnet.check", "wslnet.forward")),
]


def imports_in(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


@pytest.mark.parametrize(("where", "never"), STATIC_RULES, ids=[r[0] for r in STATIC_RULES])
def test_no_lazy_import_reaches_up_either(where: str, never: tuple[str, ...]) -> None:
    root = PACKAGE / where
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    assert files
    bad = [
        f"{f.relative_to(PACKAGE)}:{line}: {name}"
        for f in files
        for line, name in imports_in(f)
        if any(name == n or name.startswith(n + ".") for n in never)
    ]
    assert bad == []


def test_the_measurement_sees_an_import_when_there_is_one() -> None:
    """The measurement above can see a control-plane import when there is one."""
    loaded = loaded_after_importing(["wslnet.forward.control.status"])
    assert "wslnet.forward.control.status" in loaded
    assert "wslnet.forward.core.server" in loaded
    assert under(loaded, "wslnet.forward.data")
