"""The scripts and command lines that carry out a batch, and how their results read back.
Pure: the shell (shell.py) writes the script where Windows can read it and runs these.

Windows Administrator actions go into ONE script run by ONE elevated PowerShell
(`Start-Process -Verb RunAs -Wait`): one UAC prompt for the batch, not one per fix. An
elevated process cannot hand its output back to ours, so each action appends "ok N" or
"error N: why" to a log beside the script, which we read after -Wait returns."""

from __future__ import annotations

from wslnet.verdict import Action, ps_quote


def powershell_script(actions: tuple[Action, ...], log: str) -> str:
    """Each action in a try block of its own: a failure is logged and the next one still
    runs. $ErrorActionPreference=Stop makes a cmdlet's error throw; a native program
    (netsh, sc.exe) only sets $LASTEXITCODE, so it is checked after each line."""
    lines = [
        f"# wslnet check --fix: {len(actions)} action(s); each logs its result below",
        "$ErrorActionPreference = 'Stop'",
        f"$log = {ps_quote(log)}",
    ]
    for n, action in enumerate(actions, 1):
        lines += [f"# action {n}: {action.summary}", "try {"]
        for command in action.commands:
            lines += [
                "    $global:LASTEXITCODE = 0",
                f"    {command}",
                '    if ($LASTEXITCODE) { throw "exit code $LASTEXITCODE" }',
            ]
        lines += [
            f"    Add-Content -LiteralPath $log -Encoding UTF8 -Value 'ok {n}'",
            "} catch {",
            f"    Add-Content -LiteralPath $log -Encoding UTF8 -Value ('error {n}: ' + $_)",
            "}",
        ]
    return "\r\n".join(lines) + "\r\n"


def _file_args(path: str) -> list[str]:
    return ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", path]


def elevated(path: str) -> list[str]:
    """powershell.exe starting an elevated PowerShell on the script at `path` (a Windows
    path) and waiting for it; its exit code is 1 when the prompt was declined.
    Start-Process joins -ArgumentList with spaces and quotes nothing, so a path with a
    space (C:\\Users\\Jane Doe) is wrapped in double quotes inside the single-quoted one."""
    inner = ",".join(ps_quote(a) for a in _file_args(f'"{path}"'))
    command = f"Start-Process powershell.exe -Verb RunAs -Wait -ArgumentList {inner}"
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", command]


def as_user(path: str) -> list[str]:
    """powershell.exe running the script at `path` as the Windows user (no prompt)."""
    return ["powershell.exe", *_file_args(path)]


def sh_script(actions: tuple[Action, ...]) -> str:
    """The same contract for actions here: each in a subshell that stops at its first
    failing command, its result on standard output."""
    lines = []
    for n, action in enumerate(actions, 1):
        body = " && ".join(action.commands)
        lines.append(
            f"if ( {body} ); then echo 'ok {n}'; else echo \"error {n}: exit code $?\"; fi"
        )
    return "\n".join(lines) + "\n"


def sh_argv(script: str, as_root: bool, is_root: bool) -> list[str]:
    """One `sudo` for the whole batch (none when already root)."""
    argv = ["sh", "-c", script]
    return ["sudo", *argv] if as_root and not is_root else argv


def results(text: str, count: int, missing: str) -> list[str | None]:
    """Per action: None when it worked, else why not (`missing`: it left no result)."""
    found: dict[int, str | None] = {}
    for line in text.lstrip("\ufeff").splitlines():
        head, _, why = line.strip().partition(": ")
        word, _, number = head.partition(" ")
        if word in ("ok", "error") and number.isdigit():
            found[int(number)] = None if word == "ok" else (why.strip() or "failed")
    return [found.get(n, missing) for n in range(1, count + 1)]


def shutdown_argv() -> list[str]:
    """`wsl.exe --shutdown`, from WSL through interop or natively: it stops the VM and every
    distribution, the one wslnet runs in too, so it runs last and only on its own yes."""
    return ["wsl.exe", "--shutdown"]
