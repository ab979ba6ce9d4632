"""One renderer for people, one for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

import click

from wslnet.check.model import STATUSES, Finding
from wslnet.where import Environment

MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-", "info": "•", "crash": "✗"}
ASCII_MARKS = {"ok": "+", "warn": "!", "fail": "x", "skip": "-", "info": "*", "crash": "x"}
COLORS = {
    "ok": "green",
    "warn": "yellow",
    "fail": "red",
    "skip": "bright_black",
    "info": "cyan",
    "crash": "magenta",
}


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = Counter(f.status for f in findings)
    return {s: counts.get(s, 0) for s in STATUSES}


def as_json(env: Environment, findings: list[Finding]) -> str:
    doc = {
        "schema": 1,
        "environment": env.as_json(),
        "findings": [f.as_json() for f in findings],
        "summary": summary(findings),
    }
    return json.dumps(doc, indent=2, default=str)


def terminal() -> tuple[int, bool]:
    """(columns to fit, ASCII only): a legacy Windows code page cannot show box drawing."""
    import shutil

    width = max(40, min(shutil.get_terminal_size((80, 24)).columns, 160))
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return width, encoding not in ("utf8", "utf16", "utf32")


def use_color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def for_people(
    findings: list[Finding], verbose: bool, color: bool, ascii_only: bool = False
) -> str:
    def paint(text: str, status: str) -> str:
        return click.style(text, fg=str(COLORS[status])) if color else text

    lines = []
    for f in findings:
        if f.status == "skip" and not verbose:
            continue
        mark = paint((ASCII_MARKS if ascii_only else MARKS)[f.status], f.status)
        label = " (crash)" if f.status == "crash" else ""
        lines.append(f"{mark} {f.title}{label}")
        if f.detail and (verbose or f.status in ("warn", "fail", "crash", "skip")):
            lines.append(f"    {f.detail}")
        if f.fix is not None:
            lines.append(f"    fix: {f.fix.text}")
            lines += [f"      $ {c}" for c in f.fix.commands]
        if verbose and f.evidence:
            lines.append(f"    evidence: {json.dumps(f.evidence, default=str)[:400]}")
    counts = summary(findings)
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    lines.append("")
    lines.append(", ".join(parts) if parts else "no findings")
    return "\n".join(lines)


def as_markdown(
    env: Environment,
    findings: list[Finding],
    versions: dict[str, str],
    settings: dict[str, str],
) -> str:
    """`check --report`: Markdown to paste into a bug report, as flutter doctor -v and
    npx envinfo give: versions, the environment, settings, every finding with evidence."""
    rows = [
        *versions.items(),
        ("kernel", env.kernel or "-"),
        ("distro", env.distro or "-"),
        ("where", env.kind + (f" ({env.container})" if env.container else "")),
        ("networking mode", f"{env.networking_mode or '-'} ({env.mode_source or 'n/a'})"),
        *((f"`{k}`", v) for k, v in settings.items()),
    ]
    lines = ["## wslnet check report", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    counts = summary(findings)
    lines += ["", "### Findings", "", ", ".join(f"{n} {s}" for s, n in counts.items() if n), ""]
    for f in findings:
        lines.append(f"- {MARKS[f.status]} **{f.status}** `{f.id}`: {f.title}")
        if f.detail:
            lines.append(f"  - {f.detail}")
        if f.fix is not None:
            lines.append(f"  - fix: {f.fix.text}")
            lines += [f"    - `{c}`" for c in f.fix.commands]
        if f.evidence:
            evidence = json.dumps(f.evidence, default=str, indent=1)
            lines += ["  <details><summary>evidence</summary>", "", "  ```json"]
            lines += [f"  {ln}" for ln in evidence.splitlines()]
            lines += ["  ```", "  </details>"]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
