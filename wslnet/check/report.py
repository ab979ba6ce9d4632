"""`wslnet check --report`: Markdown to paste into a public bug report, as flutter doctor -v
and npx envinfo give: versions, the environment, settings, every finding with evidence.

Everything that came from the system (process names, paths, resolv.conf, .wslconfig
values) is escaped outside code blocks, so it shows as text and never as a link, an image
or HTML; URL passwords are masked; and the report says what it masked and where the
Windows user name appears, since the report is the user's to edit before pasting."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import PureWindowsPath

from wslnet import __version__, system
from wslnet.check.model import Finding
from wslnet.check.render import MARKS, summary
from wslnet.escape import code_span, markdown
from wslnet.facts.proxy import mask_url
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


def windows_user(wslconfig_path: str | None) -> str | None:
    """The Windows user name in `C:\\Users\\NAME\\.wslconfig` or `/mnt/c/Users/NAME/...`."""
    if not wslconfig_path:
        return None
    parts = PureWindowsPath(wslconfig_path).parts[:-1]  # splits on / and \ alike
    for n, name in enumerate(parts[1:], 1):
        if parts[n - 1].lower() == "users":
            return name
    return None


@dataclass
class _Masker:
    """Masks URL passwords in text on its way into the report, and counts them."""

    found: int = 0
    where: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> str:
        masked, count = mask_url(text)
        self.found += count
        return masked


def markdown_report(
    env: Environment,
    findings: list[Finding],
    versions: dict[str, str],
    settings: dict[str, str],
    user: str | None = None,
) -> str:
    mask = _Masker()

    def text(value: str) -> str:
        return markdown(mask(value))

    rows = [
        *versions.items(),
        ("kernel", env.kernel or "-"),
        ("distro", env.distro or "-"),
        ("where", env.kind + (f" ({env.container})" if env.container else "")),
        ("networking mode", f"{env.networking_mode or '-'} ({env.mode_source or 'n/a'})"),
        *settings.items(),
    ]
    lines = ["## wslnet check report", "", "| | |", "|---|---|"]
    lines += [f"| {text(k)} | {text(v)} |" for k, v in rows]
    counts = summary(findings)
    lines += ["", "### Findings", "", ", ".join(f"{n} {s}" for s, n in counts.items() if n), ""]
    for f in findings:
        lines.append(f"- {MARKS[f.status]} **{f.status}** {code_span(f.id)}: {text(f.title)}")
        if f.detail:
            lines.append(f"  - {text(f.detail)}")
        if f.fix is not None:
            lines.append(f"  - fix: {text(f.fix.text)}")
            lines += [f"    - {code_span(mask(c))}" for c in f.fix.commands]
        if f.evidence:
            if "masked" in f.evidence:
                mask.where.append(f"{f.evidence['masked']} in {f.id} ({f.evidence.get('source')})")
            evidence = json.dumps(f.evidence, default=str, indent=1)  # ASCII: no raw controls
            lines += ["  <details><summary>evidence</summary>", "", "  ```json"]
            lines += [f"  {mask(ln)}" for ln in evidence.splitlines()]
            lines += ["  ```", "  </details>"]
    return "\n".join(lines + _before_you_paste(mask, user, rows, findings))


def _before_you_paste(
    mask: _Masker, user: str | None, rows: list[tuple[str, str]], findings: list[Finding]
) -> list[str]:
    notes = [f"- masked: {markdown(w)} (shown as \\*\\*\\*)" for w in mask.where]
    if mask.found > len(mask.where):
        notes.append(f"- masked: the user name and password of {mask.found} URL(s) (\\*\\*\\*)")
    if user:
        places = ["the table above"] if any(_has(user, k + v) for k, v in rows) else []
        places += [code_span(f.id) for f in findings if _has(user, _all_text(f))]
        if places:
            notes.append(
                f"- your Windows user name {code_span(user)} appears in: {', '.join(places)}"
            )
    if not notes:
        return []
    return ["", "### Before you paste", "", *notes]


def _has(user: str, text: str) -> bool:
    return user.lower() in text.lower()


def _all_text(f: Finding) -> str:
    fix = f"{f.fix.text} {' '.join(f.fix.commands)}" if f.fix else ""
    return f"{f.title} {f.detail} {fix} {json.dumps(f.evidence, default=str, ensure_ascii=False)}"
