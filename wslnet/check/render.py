"""One renderer for people, one for scripts."""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping

import click

from wslnet.check.model import STATUSES, Finding
from wslnet.verdict import Fix, Where
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


def terminal(ascii_asked: bool = False) -> tuple[int, bool]:
    """(columns to fit, ASCII only) for standard output."""
    import shutil

    width = max(40, min(shutil.get_terminal_size((80, 24)).columns, 160))
    encoding = getattr(sys.stdout, "encoding", None)
    return width, ascii_asked or wants_ascii(encoding, os.environ, bool(sys.flags.utf8_mode))


def wants_ascii(encoding: str | None, environ: Mapping[str, str], utf8_mode: bool) -> bool:
    """No box drawing for a stream that cannot encode it (a legacy Windows code page), nor
    for a locale that is not UTF-8 (LANG=C). The stream alone cannot tell: under a C
    locale Python switches itself to UTF-8 (PEP 538/540, even with -E, which pipx's
    launcher uses), coercing LC_CTYPE to C.UTF-8; so the user's own variables decide."""
    if (encoding or "").lower().replace("-", "") not in ("utf8", "utf16", "utf32"):
        return True
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name, "")
        if not value or (name == "LC_CTYPE" and utf8_mode and value == "C.UTF-8"):
            continue  # unset, or Python's own coercion of a C locale
        return not any(u in value.lower() for u in ("utf-8", "utf8"))
    return False  # no locale set: trust the stream


def wrap_width(width: int) -> int | None:
    """Wrap to a terminal (or to COLUMNS when given); a pipe gets whole lines, for grep."""
    return width if "COLUMNS" in os.environ or sys.stdout.isatty() else None


def use_color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


# Where a fix's commands run, in words, and the prompt shown before each command.
WHERE: dict[Where, tuple[str, str]] = {
    "here": ("run here", "$"),
    "here-root": ("run here, as root", "$"),
    "windows": ("run on Windows, in PowerShell", "PS>"),
    "windows-admin": ("run on Windows, in PowerShell as Administrator", "PS>"),
}


def wrap(text: str, width: int | None, first: str, rest: str) -> list[str]:
    """`text` after `first`, in lines that fit `width` (None: one line), continuing under
    `rest` (a hanging indent); words are never cut, a word longer than the line stays whole."""
    if width is None:
        return [first + text]
    return textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    ) or [first.rstrip()]  # fmt: skip


def _fix_lines(fix: Fix, width: int | None) -> list[str]:
    lines = wrap(fix.text, width, "    fix: ", "         ")
    if fix.commands:
        words, prompt = WHERE[fix.where]
        lines.append(f"    {words}:")
        lines += [f"      {prompt} {c}" for c in fix.commands]  # never wrapped: copied whole
    return lines


def for_people(
    findings: list[Finding],
    verbose: bool,
    color: bool,
    ascii_only: bool = False,
    width: int | None = None,
) -> str:
    """One line per finding (wrapped to `width` with a hanging indent), its detail and
    its fix; a fix several findings share is printed once and referred to after."""

    def paint(text: str, status: str) -> str:
        return click.style(text, fg=str(COLORS[status])) if color else text

    lines = []
    shown: dict[tuple[str, tuple[str, ...], str], str] = {}
    for f in findings:
        if f.status == "skip" and not verbose:
            continue
        mark = paint((ASCII_MARKS if ascii_only else MARKS)[f.status], f.status)
        label = " (crash)" if f.status == "crash" else ""
        head = wrap(f"{f.title}{label}", width, "# ", "  ")
        lines += [mark + head[0][1:], *head[1:]]  # the mark painted after wrapping
        if f.detail and (verbose or f.status in ("warn", "fail", "crash", "skip")):
            lines += wrap(f.detail, width, "    ", "    ")
        if f.fix is not None:
            key = (f.fix.text, tuple(f.fix.commands), f.fix.where)
            if key in shown:
                same = f'the same as for "{shown[key]}" above'
                lines += wrap(same, width, "    fix: ", " " * 9)
            else:
                shown[key] = f.title
                lines += _fix_lines(f.fix, width)
        if verbose and f.evidence:
            lines.append(f"    evidence: {json.dumps(f.evidence, default=str)[:400]}")
    counts = summary(findings)
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    lines.append("")
    lines.append(", ".join(parts) if parts else "no findings")
    return "\n".join(lines)


def root_hint(env: Environment, selected: list[str], raw_on: bool, args: list[str]) -> str | None:
    """The line that says which selected checks were skipped for want of root, and the
    command that runs them: sudo with wslnet's full path, since sudo's secure_path does
    not hold ~/.local/bin (where pipx puts it). Never on Windows: no sudo, no raw probes."""
    if env.kind == "windows" or env.raw_probes or not raw_on:
        return None
    rooted = sorted(i for i in selected if i.startswith("raw."))
    if not rooted:
        return None
    n = len(rooted)
    command = shlex.join(["check", *args])
    return (
        f"{n} check{'s' if n > 1 else ''} need{'' if n > 1 else 's'} root "
        f'({", ".join(rooted)}): sudo "$(command -v wslnet)" {command}'
    )
