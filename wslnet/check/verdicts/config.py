"""config.*: .wslconfig and /etc/wsl.conf as WSL reads them, against the live mode."""

from __future__ import annotations

from dataclasses import dataclass, replace

from wslnet.check.fix import edit
from wslnet.check.model import Finding, info, ok, skip, warn
from wslnet.facts.wslconfig import _KEY, _SECTION, Typo, WslConfig
from wslnet.verdict import Action, Fix

# The checks that read .wslconfig: each re-runs after --fix edits it.
WSLCONFIG_CHECKS = ("config.wslconfig", "config.mode")


@dataclass(frozen=True)
class WslconfigFile:
    """.wslconfig as read, for an edit: where (as this side names it), its text, the live
    mode, and whether the edit runs natively on Windows (PowerShell) or from WSL."""

    path: str
    text: str
    live: str | None
    windows: bool = False


def _key_typos(text: str) -> list[tuple[int, str, str]]:
    """(line, written, meant) for each key of a section misspelling one WSL knows."""
    found, section = [], ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("["):
            match = _SECTION.match(line)
            section = match.group(1) if match else ""
            continue
        written = _KEY.match(raw.lstrip()) if raw[:1].isalpha() or raw[:1] in " \t" else None
        rest = raw.lstrip()[written.end() :].lstrip(" \t") if written else ""
        if written and section and rest.startswith("="):
            meant = edit.meant_key(section, written.group(0))
            if meant is not None:
                found.append((n, written.group(0), meant))
    return found


def wslconfig_action(file: WslconfigFile, conf: WslConfig) -> Action | None:
    """ONE edit for everything --fix corrects in the file (misspelled values and keys,
    localhostForwarding=false in NAT mode): the checks that read the file attach the same
    action, so it is offered once, and two edits never race for one file."""
    new, changes = file.text, []
    for typo in conf.typos:
        changed = edit.set_value(new, typo.line, typo.meant)
        if changed is not None:
            new = changed
            changes.append(f"{typo.key.split('.')[1]}={typo.meant}")
    for line, written, meant in _key_typos(file.text):
        changed = edit.rename_key(new, line, meant)
        if changed is not None:
            new = changed
            changes.append(f"{written} -> {meant}")
    if file.live == "nat" and conf.flag("wsl2.localhostForwarding") is False:
        new = edit.set_key(new, "wsl2", "localhostForwarding", "true")
        changes.append("localhostForwarding=true")
    if new == file.text:
        return None
    summary = f"edit .wslconfig: {', '.join(changes)}"
    return edit.file_action(file.path, file.text, new, summary, file.windows, WSLCONFIG_CHECKS)


def _with_action(f: Finding, action: Action | None) -> Finding:
    if f.fix is None or action is None:
        return f
    f.fix = replace(f.fix, action=action, where=action.where)
    return f


def line_problems(path: str, conf: WslConfig) -> list[Finding]:
    """One warning per line WSL will skip or misread; the file applies after a restart.
    A misspelled value is named with the value meant (a restart alone cannot help)."""
    fix = Fix(f"edit {path}, then run `wsl --shutdown` from Windows")
    typos = {t.line: t for t in conf.typos}
    findings = []
    for p in conf.problems:
        typo = typos.get(p.line)
        if typo is not None:
            findings.append(misspelled(path, typo))
            continue
        findings.append(
            warn(
                f"{path} line {p.line}: WSL will not use it as written",
                detail=p.why,
                fix=fix,
                evidence={"line": p.text},
            )
        )
    return findings


def misspelled(path: str, typo: Typo) -> Finding:
    key = typo.key.split(".")[1]
    return warn(
        f"{path} line {typo.line}: {key}={typo.written} is misspelled: {key}={typo.meant}?",
        detail=f"WSL does not know {typo.written!r} and uses its default instead",
        fix=Fix(f"write {key}={typo.meant} on line {typo.line} of {path}"),
        evidence={
            "line": typo.line,
            "key": typo.key,
            "written": typo.written,
            "meant": typo.meant,
        },
    )


def wslconfig_file(
    path: str | None, conf: WslConfig | None, file: WslconfigFile | None = None
) -> list[Finding]:
    if conf is None:
        where = path or "%UserProfile%\\.wslconfig (wslvar/cmd.exe could not locate it)"
        return [info("No .wslconfig read", detail=f"looked for {where}")]
    if conf.problems:
        action = wslconfig_action(file, conf) if file is not None else None
        typo_lines = {t.line for t in conf.typos}
        typo_lines |= {n for n, _, _ in _key_typos(file.text)} if file is not None else set()
        found = line_problems(str(path), conf)  # one finding per problem, in order
        return [
            _with_action(f, action) if p.line in typo_lines else f
            for p, f in zip(conf.problems, found, strict=True)
        ]
    settings = {e.key: e.value for e in conf.entries.values()}
    return [ok(f"{path}: WSL reads every line", evidence={"settings": settings})]


def wslconf_file(conf: WslConfig | None) -> list[Finding]:
    if conf is None:
        return [info("No /etc/wsl.conf: WSL's defaults apply")]
    findings = line_problems("/etc/wsl.conf", conf)
    if conf.flag("network.generateResolvConf") is False:
        findings.append(info("generateResolvConf=false: /etc/resolv.conf is yours to keep working"))
    return findings or [ok("/etc/wsl.conf: WSL reads every line")]


def mode_mismatch(wanted: str, live: str) -> Finding:
    """.wslconfig asks for one networking mode and another runs."""
    return warn(
        f".wslconfig asks for {wanted} networking but {live} is running",
        detail="WSL falls back to NAT when mirrored mode's requirements are not met "
        "(Windows 11 22H2+, WSL 2.0+), or the file changed since the VM started",
        fix=Fix("restart WSL so the file applies", ["wsl --shutdown"], "windows"),
    )


def config_mode(
    conf: WslConfig | None, live: str | None, file: WslconfigFile | None = None
) -> list[Finding]:
    """What .wslconfig asks for against what runs (mirrored falls back to NAT silently)."""
    if conf is None:
        return [skip("No .wslconfig to compare with the live mode")]
    findings: list[Finding] = []
    wanted = conf.get("wsl2.networkingMode") or conf.get("experimental.networkingMode") or "nat"
    if wanted.lower() != live:
        findings.append(mode_mismatch(wanted, str(live)))
    if live == "mirrored":
        for key in ("wsl2.localhostForwarding", "wsl2.dnsProxy"):
            if conf.get(key) is not None:
                findings.append(info(f"{key.split('.')[1]} has no effect in mirrored mode"))
    if live == "nat":
        for key in ("experimental.hostAddressLoopback", "experimental.ignoredPorts"):
            if conf.get(key) is not None:
                findings.append(info(f"{key.split('.')[1]} has no effect in NAT mode"))
        if conf.flag("wsl2.localhostForwarding") is False:
            findings.append(
                warn(
                    "localhostForwarding=false: Windows cannot reach WSL on localhost",
                    fix=Fix(
                        "remove the line and run `wsl --shutdown`, or forward ports with wslnet",
                        action=wslconfig_action(file, conf) if file is not None else None,
                    ),
                )
            )
    return findings or [ok(f".wslconfig matches the live {live} mode")]
