"""The facts `wslnet check --report` adds for a bug report: versions, and the
networking settings WSL read from .wslconfig."""

from __future__ import annotations

import sys

from wslnet import __version__, system
from wslnet.facts.wslconfig import WslConfig
from wslnet.where import Environment


def versions(env: Environment) -> dict[str, str]:
    """wslnet's, Python's and (inside WSL, through interop) WSL's own."""
    found = {"wslnet": __version__, "Python": sys.version.split()[0]}
    code, out, _ = system.wsl_exe(["--version"], timeout=3) if env.in_wsl else (1, "", "")
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    found["WSL (wsl.exe --version)"] = "; ".join(lines[:3]) if code == 0 else "not available"
    return found


def settings(conf: WslConfig | None) -> dict[str, str]:
    """The [wsl2] and [experimental] settings of .wslconfig (pure)."""
    if conf is None:
        return {}
    return {
        f"{e.section}.{e.key}": e.value
        for e in conf.entries.values()
        if e.section.lower() in ("wsl2", "experimental")
    }
