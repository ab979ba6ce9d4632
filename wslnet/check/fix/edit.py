"""Edits to .wslconfig as WSL's own parser reads it (wsl-networking.md section 5), the diff
shown before consent, and the Action that writes the file with a backup beside it. Pure:
text in, text and Actions out; the commands do the writing when --fix runs them.

An edit changes one line in place (the key as written, its spacing and its `# comment`
kept) or adds `key=value` right under the section's header, so the new line is the first
of its key: WSL takes the first of a key given twice."""

from __future__ import annotations

import difflib
import hashlib
import re
import shlex

from wslnet.facts.wslconfig import _KEY, _SECTION, KNOWN, FileKind
from wslnet.verdict import Action, Where, ps_quote

_ASSIGN = re.compile(r"^(\s*[A-Za-z][A-Za-z0-9]*[ \t]*=[ \t]*)(.*)$")


def _comment(value: str) -> str:
    """The value's trailing comment with the blanks before it ('' if none): an unquoted,
    unescaped `#` starts one, as in WSL's parser."""
    quoted, i = False, 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            start = i
            while start > 0 and value[start - 1] in " \t":
                start -= 1
            return value[start:]
        i += 1
    return ""


def _split(text: str) -> tuple[list[str], str]:
    lines = text.splitlines(keepends=True)
    return lines, "\r\n" if "\r\n" in text else "\n"


def set_value(text: str, line: int, value: str) -> str | None:
    """`value` in place of line `line`'s value (1-based); None when that line is not a
    plain `key=value` (a continued value is left to the user)."""
    lines, _ = _split(text)
    if not 1 <= line <= len(lines):
        return None
    raw = lines[line - 1]
    body = raw.rstrip("\r\n")
    match = _ASSIGN.match(body)
    if match is None or body.endswith("\\"):
        return None
    head, rest = match.groups()
    lines[line - 1] = head + value + _comment(rest) + raw[len(body) :]
    return "".join(lines)


def rename_key(text: str, line: int, key: str) -> str | None:
    """`key` in place of the key written on line `line` (its value and comment kept)."""
    lines, _ = _split(text)
    if not 1 <= line <= len(lines):
        return None
    raw = lines[line - 1]
    indent = raw[: len(raw) - len(raw.lstrip())]
    written = _KEY.match(raw.lstrip())
    if written is None:
        return None
    lines[line - 1] = indent + key + raw.lstrip()[written.end() :]
    return "".join(lines)


def set_key(text: str, section: str, key: str, value: str) -> str:
    """`section.key=value`: the first line of that key in that section changed in place,
    or a line added under the section's first header, or the section added at the end."""
    lines, nl = _split(text)
    current, header = None, None
    for n, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if stripped.startswith("["):
            match = _SECTION.match(stripped)
            current = match.group(1).lower() if match else None
            if current == section.lower() and header is None:
                header = n
            continue
        written = _KEY.match(raw.lstrip())
        if current == section.lower() and written and written.group(0).lower() == key.lower():
            changed = set_value(text, n, value)
            if changed is not None:
                return changed
    if header is not None:
        if not lines[header - 1].endswith(("\n", "\r")):
            lines[header - 1] += nl
        lines.insert(header, f"{key}={value}{nl}")
        return "".join(lines)
    gap = nl if text and not text.endswith(("\n", "\r")) else ""
    return f"{text}{gap}[{section}]{nl}{key}={value}{nl}"


def meant_key(section: str, key: str, kind: FileKind = "wslconfig") -> str | None:
    """The known key of the same section that `key` misspells (the closeness the config
    verdict names it with, facts/wslconfig.py's _unknown), or None."""
    known = {n.lower(): n for n in KNOWN[kind]}
    name = f"{section}.{key}".lower()
    if name in known or any(n.split(".")[1] == key.lower() for n in known):
        return None  # known, or a key of another section: moving it is the user's call
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    if not close or close[0].split(".")[0] != section.lower():
        return None
    return known[close[0]].split(".")[1]


def diff(path: str, old: str | None, new: str) -> tuple[str, ...]:
    """What changes, as `diff -u` prints it."""
    before = old.splitlines() if old is not None else []
    return tuple(
        difflib.unified_diff(before, new.splitlines(), path, f"{path} (after)", lineterm="")
    )


def backup_name(path: str, old: str) -> str:
    """Beside the file, named by what it held: a later fix never overwrites the backup an
    earlier batch's undo needs."""
    return f"{path}.wslnet-{hashlib.sha256(old.encode()).hexdigest()[:8]}"


def _sh(path: str, old: str | None, new: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    p, write = shlex.quote(path), f"printf %s {shlex.quote(new)} > {shlex.quote(path)}"
    if old is None:  # a new file: nothing to back up, the undo removes it
        return (f"test ! -e {p}", write), (f"rm {p}",)
    b = shlex.quote(backup_name(path, old))
    # The file must still hold what the check read: an edit made since is never clobbered.
    unchanged = f"printf %s {shlex.quote(old)} | cmp -s - {p}"
    return (unchanged, f"cp {p} {b}", write), (f"mv -f {b} {p}",)


def _ps(path: str, old: str | None, new: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # WriteAllText writes UTF-8 without a BOM, which WSL reads; Set-Content in 5.1 would
    # write the ANSI code page.
    p, write = ps_quote(path), f"[IO.File]::WriteAllText({ps_quote(path)}, {ps_quote(new)})"
    if old is None:
        return (f"if (Test-Path -LiteralPath {p}) {{ throw 'it exists now' }}", write), (
            f"Remove-Item -LiteralPath {p}",
        )
    b = ps_quote(backup_name(path, old))
    unchanged = (
        f"if ([IO.File]::ReadAllText({p}) -cne {ps_quote(old)}) "
        "{ throw 'the file changed since wslnet read it' }"
    )
    return (unchanged, f"Copy-Item -LiteralPath {p} -Destination {b}", write), (
        f"Move-Item -Force -LiteralPath {b} -Destination {p}",
    )


def file_action(
    path: str,
    old: str | None,
    new: str,
    summary: str,
    windows: bool,
    recheck: tuple[str, ...],
    needs_shutdown: bool = True,
) -> Action:
    """Writes `new` to `path` (from WSL through /mnt/c, or natively in PowerShell as the
    user), backup first; the undo puts the backup back. WSL reads .wslconfig only when
    the VM starts: that change applies after `wsl --shutdown` (`needs_shutdown`)."""
    commands, undo = (_ps if windows else _sh)(path, old, new)
    where: Where = "windows" if windows else "here"
    undo_summary = "restore it from the backup" if old is not None else "remove the file"
    return Action(where, summary, commands, undo, undo_summary, recheck,
                  needs_shutdown=needs_shutdown, diff=diff(path, old, new))  # fmt: skip
