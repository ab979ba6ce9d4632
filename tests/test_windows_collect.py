"""The suite collects on Windows: no POSIX-only call runs when a test module is imported.

Windows' CI job imports every module under tests/ (conftest.py first). A call that does
not exist there (`os.geteuid`), or that fails there (`ctypes.CDLL(None)`: ctypes 3.10-3.13
evaluates `'/' in name` with name None, a TypeError), in module-level code or in a
decorator aborts collection of the whole run, and no Linux test can see it. This lint
reads what runs at import (module and class bodies, decorators, default values) and
flags every POSIX-only name there that no platform test guards."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

# Attributes that do not exist on Windows (or fail there) in the modules tests import.
POSIX_ONLY = {
    "os": {"geteuid", "getuid", "getegid", "getgid", "fork", "setsid", "killpg", "getpgid",
           "mkfifo", "setns", "unshare", "sched_getaffinity", "getloadavg", "WNOHANG"},
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGALRM", "SIGCHLD",
               "SIGPIPE", "pthread_kill", "setitimer"},
    "socket": {"AF_UNIX", "SO_REUSEPORT", "MSG_NOSIGNAL", "TCP_CORK", "SO_BINDTODEVICE"},
}  # fmt: skip
POSIX_MODULES = {"fcntl", "termios", "pwd", "grp", "resource", "pty", "tty", "posix"}
GUARDS = ("platform", "os.name", "hasattr", "getattr", "win32")


def _guarded(test: ast.expr) -> bool:
    text = ast.unparse(test)
    return any(g in text for g in GUARDS)


def _import_time(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes that run when the module is imported, minus platform-guarded branches."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        defaults = [d for d in node.args.kw_defaults if d is not None]
        for part in [*node.decorator_list, *node.args.defaults, *defaults]:
            yield part
            yield from _import_time(part)
        return  # the body runs only when called
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.If) and _guarded(node.test):
        return
    if isinstance(node, ast.BoolOp):
        # `sys.platform == "win32" or os.geteuid() != 0`: what follows a guard is guarded.
        for value in node.values:
            if _guarded(value):
                return
            yield value
            yield from _import_time(value)
        return
    if isinstance(node, ast.Try) and any(
        isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "AttributeError", "OSError")
        for h in node.handlers
    ):
        return  # the module guards it itself
    for child in ast.iter_child_nodes(node):
        yield child
        yield from _import_time(child)


def posix_only_at_import(source: str) -> list[str]:
    """`line: what` for each POSIX-only use that runs when `source` is imported."""
    found = []
    for node in _import_time(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in POSIX_ONLY.get(node.value.id, ()):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [f"{node.lineno}: import {n}" for n in names if n in POSIX_MODULES]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("CDLL"):
            if node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value is None:
                found.append(f"{node.lineno}: ctypes.CDLL(None)")
        elif isinstance(node, ast.Attribute) and node.attr == "add_reader":
            found.append(f"{node.lineno}: add_reader (the proactor has none)")
    return found


MODULES = sorted(p.name for p in TESTS.glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_importing_the_module_runs_nothing_posix_only(name: str) -> None:
    assert posix_only_at_import((TESTS / name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import ctypes\nLIBC = ctypes.CDLL(None, use_errno=True)\n", ["2: ctypes.CDLL(None)"]),
        (
            "import os, pytest\n@pytest.mark.skipif(os.geteuid() != 0, reason='root')\n"
            "def test_x(): pass\n",
            ["2: os.geteuid"],
        ),
        ("import fcntl\n", ["1: import fcntl"]),
        ("import socket\nPAIR = socket.socketpair(socket.AF_UNIX)\n", ["2: socket.AF_UNIX"]),
        ("class T:\n    sig = signal.SIGHUP\n", ["2: signal.SIGHUP"]),
        ("def f(x=os.getuid()): pass\n", ["1: os.getuid"]),
    ],
)
def test_the_lint_sees_posix_only_code_at_import(source: str, found: list[str]) -> None:
    assert posix_only_at_import(source) == found


@pytest.mark.parametrize(
    "source",
    [
        "import os\ndef test_x():\n    assert os.geteuid() == 0\n",
        "import sys, os, pytest\n"
        "@pytest.mark.skipif(sys.platform == 'win32' or os.geteuid() != 0, reason='root')\n"
        "def test_x(): pass\n",
        "import sys, ctypes\nif sys.platform == 'linux':\n    LIBC = ctypes.CDLL(None)\n",
        "try:\n    import fcntl\nexcept ImportError:\n    fcntl = None\n",
        "import os\nROOT = hasattr(os, 'geteuid') and os.geteuid() == 0\n",
    ],
)
def test_the_lint_lets_guarded_and_deferred_code_be(source: str) -> None:
    assert posix_only_at_import(source) == []
