"""Runs a command as if on another machine's files: a private mount namespace whose root
is the real one minus what a test hides (/.dockerenv, /run), plus files a test puts in
(a WSL kernel release over /proc/sys/kernel/osrelease, a resolv.conf, markers in /run).

Combined with `ip netns exec`, the command sees the lab namespace's interfaces and
/proc/net and these files, exactly as wslnet would on a WSL VM.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

_SCRIPT = r"""
set -e
R=/mnt
mount -t tmpfs wslnet-jail "$R"
for d in /*; do
  n=${d#/}
  case "$n" in mnt|run) continue ;; esac
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "$R/$n"
  elif [ -d "$d" ]; then mkdir "$R/$n"; mount --rbind "$d" "$R/$n"
  fi
done
mkdir "$R/run" "$R/mnt"
mount -t tmpfs wslnet-run "$R/run"
"""


def run(
    prefix: tuple[str, ...],
    argv: list[str],
    files: dict[str, Path] | None = None,
    dirs: list[str] | None = None,
    env: dict[str, str] | None = None,
    touch: list[str] | None = None,
    timeout: float = 30.0,
    etc: dict[str, str | Path | None] | None = None,
    input: str | None = None,
    etc_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs argv inside the jail (after `prefix`, e.g. `ip netns exec NS`); `input` is
    its standard input (none: /dev/null, as for a program no one answers).

    `etc` changes a private copy of /etc: a Path is a file to put there, a str starting
    with "->" makes a symbolic link (a dangling one is fine), any other str is content,
    None removes the file.

    `etc_dir`: a folder of the test's (a copy of /etc) mounted as /etc, so that what a
    command changes there outlives the run (`--fix`, then `--undo`); `etc` edits it."""
    script = _SCRIPT
    keep = []
    if etc_dir is not None:
        script += f'mount --bind {shlex.quote(str(etc_dir))} "$R/etc"\n'
    elif etc:
        script += 'mount -t tmpfs wslnet-etc "$R/etc"\ncp -a /etc/. "$R/etc/"\n'
    if etc:
        for name, what in etc.items():
            target = shlex.quote(f"/etc/{name}")
            script += f'rm -f "$R"{target}; mkdir -p "$(dirname "$R"{target})"\n'
            if what is None:
                continue
            if isinstance(what, str) and what.startswith("->"):
                script += f'ln -s {shlex.quote(what[2:].strip())} "$R"{target}\n'
                continue
            if isinstance(what, str):
                with tempfile.NamedTemporaryFile("w", suffix=".jail", delete=False) as tmp:
                    tmp.write(what)
                keep.append(tmp.name)
                what = Path(tmp.name)
            script += f'cp {shlex.quote(str(what))} "$R"{target}\n'
    try:
        return _run(prefix, argv, files, dirs, env, touch, timeout, script, input)
    finally:
        for name in keep:
            os.unlink(name)


def _run(
    prefix: tuple[str, ...],
    argv: list[str],
    files: dict[str, Path] | None,
    dirs: list[str] | None,
    env: dict[str, str] | None,
    touch: list[str] | None,
    timeout: float,
    script: str,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    for target, source in (files or {}).items():
        script += f'mount --bind {shlex.quote(str(source))} "$R"{shlex.quote(target)}\n'
    for d in dirs or []:
        script += f'mkdir -p "$R"{shlex.quote(d)}\n'
    for f in touch or []:  # only in the jail's own tmpfs (/ and /run)
        script += f'touch "$R"{shlex.quote(f)}\n'
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root", "LANG": "C.UTF-8"}
    base_env.update(env or {})
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in base_env.items())
    script += f'cd /; exec chroot "$R" /usr/bin/env -i {env_args} "$@"\n'
    command = [*prefix, "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
    if input is not None:
        return subprocess.run(
            [*command, *argv], capture_output=True, text=True, timeout=timeout, input=input
        )
    return subprocess.run(
        [*command, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def wslnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "wslnet", *args]
