"""The forwarder's layers only look down: the core and the data path never import the
control plane (config file, API, status, auto-forward), so they stay testable and small."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import wslnet.forward.core
import wslnet.forward.data

_LOADED = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def modules(package: object) -> list[str]:
    pkg_name = package.__name__  # type: ignore[attr-defined]
    pkg_path = package.__path__  # type: ignore[attr-defined]
    return [f"{pkg_name}.{m.name}" for m in pkgutil.iter_modules(pkg_path)]


def loaded_after_importing(names: list[str]) -> set[str]:
    res = subprocess.run(
        [sys.executable, "-c", _LOADED, *names], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout))


def test_core_and_data_path_never_import_the_control_plane() -> None:
    lower = modules(wslnet.forward.core) + modules(wslnet.forward.data)
    lower = [m for m in lower if sys.platform == "linux" or not m.endswith(("epoll", "splice"))]
    assert "wslnet.forward.core.server" in lower and "wslnet.forward.data.udp" in lower
    loaded = loaded_after_importing(lower)
    assert set(lower) <= loaded
    assert not {m for m in loaded if m.startswith("wslnet.forward.control")}
    assert not {m for m in loaded if m.split(".")[0] in ("aiohttp", "scapy")}


def test_the_control_plane_does_load_the_core() -> None:
    """The measurement above can see a control-plane import when there is one."""
    loaded = loaded_after_importing(["wslnet.forward.control.status"])
    assert "wslnet.forward.control.status" in loaded
    assert "wslnet.forward.core.server" in loaded
