"""The [[forward]] table --fix adds to the Windows forwarder's config file for a WSL
listener WSL's relay misses (bound to eth0, UDP, localhostForwarding=false), and the
Action that writes it. Pure: the file as read in, text and an Action out.

The table's target is `wsl:PORT`: the forwarder follows the VM's address across `wsl
--shutdown`, so the fix outlives the address it was made for. The file is backed up
first; the undo puts the backup back, which removes exactly the table added."""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import replace

from wslnet.check.fix import edit
from wslnet.check.forwarder import ForwardFile
from wslnet.verdict import Action, ps_quote

SHOWN = "%APPDATA%\\wslnet\\forward.toml"  # the file as a Windows user names it
MARK = "# added by wslnet check --fix (undo: wslnet check --undo)"
# The forwarder watches its file and reloads its rules when it changes (forward/control/
# reload.py); when none runs, nothing reads it until one starts.
NEXT = (
    "a running wslnet forwarder on Windows reloads the file at once; if none runs, start "
    "it on Windows with `wslnet forward` (it reads that file) or `wslnet service install`"
)


def table(proto: str, port: int, nl: str = "\n") -> str:
    lines = [MARK, "[[forward]]", f'listen = "{port}"', f'target = "wsl:{port}"']
    if proto == "udp":
        lines.append('proto = "udp"')
    return nl.join(lines) + nl


def with_table(text: str | None, proto: str, port: int) -> str:
    """`text` with the table at its end, in the file's own line ending, a blank line before."""
    if not text:
        return table(proto, port)
    nl = "\r\n" if "\r\n" in text else "\n"
    gap = "" if text.endswith(("\n", "\r")) else nl
    return text + gap + nl + table(proto, port, nl)


def _folder(file: ForwardFile) -> str:
    """The command that makes the file's folder (%APPDATA%\\wslnet may not exist yet)."""
    if file.windows:
        folder = file.path.rsplit("\\", 1)[0]
        return f"New-Item -ItemType Directory -Force -Path {ps_quote(folder)} | Out-Null"
    return f"mkdir -p {shlex.quote(posixpath.dirname(file.path))}"


def add_forward(file: ForwardFile, proto: str, port: int) -> Action:
    """Adds `listen = "PORT"`, `target = "wsl:PORT"` (and `proto = "udp"`) to the file."""
    new = with_table(file.text, proto, port)
    summary = f"add a forward of {proto.upper()} port {port} to wsl:{port} in {SHOWN}"
    action = edit.file_action(file.path, file.text, new, summary, file.windows, (),
                              needs_shutdown=False)  # fmt: skip
    undo = "remove that table (the backup put back)" if file.text else "remove the file"
    return replace(action, commands=(_folder(file), *action.commands), undo_summary=undo,
                   note=NEXT)  # fmt: skip
