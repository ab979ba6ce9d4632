"""What --fix, --dry-run and --undo print. Pure: values in, lines out."""

from __future__ import annotations

from wslnet.check.fix.plan import Batch, Item, Proof
from wslnet.check.render import ASCII_MARKS, MARKS
from wslnet.verdict import Action, Where

LABEL: dict[Where, str] = {
    "here": "here",
    "here-root": "here, as root",
    "windows": "Windows",
    "windows-admin": "Windows, Administrator",
}
PROMPT: dict[Where, str] = {"here": "$", "here-root": "#", "windows": "PS>", "windows-admin": "PS>"}
SHUTDOWN = "wsl --shutdown"


def offer(items: list[Item], with_commands: bool = False) -> list[str]:
    lines = ["Fixes wslnet can apply:"]
    for item in items:
        a = item.action
        lines.append(f"  {item.number}. [{LABEL[a.where]}] {a.summary}  (undo: {a.undo_summary})")
        lines += [f"       {line}" for line in a.diff]  # a file's change, before consent
        lines += [f"       {a.note}"] if a.note else []  # a warning, before consent too
        if with_commands:
            lines += [f"       {PROMPT[a.where]} {c}" for c in a.commands]
        if a.needs_shutdown:
            lines.append(f"       applies after `{SHUTDOWN}`, which is asked for on its own")
    return lines


SHUTDOWN_QUESTION = (
    f"Run `{SHUTDOWN}` now, so the changes apply? It stops every WSL distribution, this one "
    "too. [y/N] "
)


def shutdown_later(consent: str) -> str:
    how = " (or give --shutdown with --yes)" if consent == "yes" else ""
    return (f"These changes apply after `{SHUTDOWN}`: run it from Windows when ready{how}; it "
            "stops every WSL distribution, this one too")  # fmt: skip


def shutting_down(error: str | None, ascii_only: bool) -> str:
    marks = ASCII_MARKS if ascii_only else MARKS
    if error is None:
        return f"{marks['ok']} {SHUTDOWN}: every WSL distribution stopped"
    return f"{marks['fail']} {SHUTDOWN}: {error}"


def question(items: list[Item]) -> str:
    return f"Apply {', '.join(str(i.number) for i in items)}? [y/N/list] "


def _how(batch: Batch) -> str:
    n = len(batch.actions)
    fixes = f"{n} fix{'es' if n > 1 else ''}"
    return {
        "windows-admin": f"one Windows administrator prompt for {fixes}",
        "windows": f"one PowerShell as your Windows user for {fixes}",
        "here-root": f"sudo once for {fixes}",
        "here": f"{fixes} here",
    }[batch.where]


def running(batch: Batch) -> str:
    return f"  ({_how(batch)})"


def dry_run(batches: list[Batch], undoing: bool = False) -> list[str]:
    """The exact commands, batch by batch, and (for a fix) the undo kept for each."""
    lines = ["Dry run: nothing is changed. wslnet would run:"]
    for batch in batches:
        lines.append(f"  {LABEL[batch.where]} ({_how(batch)}):")
        for a in batch.actions:
            lines.append(f"    # {a.summary}")
            lines += [f"    # {a.note}"] if a.note else []
            lines += [f"    {PROMPT[a.where]} {c}" for c in a.commands]
            if not undoing:
                lines += [f"    #   undo: {PROMPT[a.where]} {c}" for c in a.undo]
                if not a.undo:
                    lines.append(f"    #   undo: {a.undo_summary}")
    if any(a.needs_shutdown for b in batches for a in b.actions):
        lines.append(f"  then, only on its own yes (or --shutdown): {SHUTDOWN} (stops every WSL "
                     "distribution)")  # fmt: skip
    return lines


def proof(item: Item, proofs: list[Proof], error: str | None, ascii_only: bool) -> list[str]:
    """Before and after, for one applied fix: each finding it answered as the re-check
    sees it now, with what it was; or why the fix did not work."""
    marks = ASCII_MARKS if ascii_only else MARKS
    a = item.action
    if error is not None:
        return [f"{marks['fail']} {item.number}. {a.summary}: not applied: {error}"]
    lines = []
    for p in proofs:
        if p.after is None:
            lines.append(f"{marks['ok']} {p.before.id}: no longer reported      was: {p.was}")
        elif p.worked:
            lines.append(f"{marks[p.after.status]} {p.after.id}: {p.after.title}      was: {p.was}")
        else:
            lines.append(
                f"{marks['fail']} {item.number}. {a.summary}: applied, but {p.after.id} "
                f"still finds: {p.after.title}"
            )
            if p.after.detail:
                lines.append(f"    {p.after.detail}")
    return lines


def undoing(when: str, actions: tuple[Action, ...]) -> list[str]:
    lines = [f"Undoing the fixes applied {when}:"]
    lines += [f"  {n}. [{LABEL[a.where]}] {a.summary}" for n, a in enumerate(actions, 1)]
    return lines


def undone(reversal: Action, error: str | None, ascii_only: bool) -> str:
    """One line per undo action run (`reversal` is plan.reverse of what was applied)."""
    marks = ASCII_MARKS if ascii_only else MARKS
    if not reversal.commands:  # a restart: nothing was changed that could be put back
        return f"{marks['info']} {reversal.undo_summary}: {reversal.summary}"
    if error is None:
        return f"{marks['ok']} {reversal.summary}  (undid: {reversal.undo_summary})"
    return f"{marks['fail']} {reversal.summary}: not done: {error}"
