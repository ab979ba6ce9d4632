"""Text from outside (paths, headers, host names, process names, config values) made
safe for where it is shown: one line with no terminal escapes for a log or a terminal,
inert text for Markdown. Pure; a leaf module (imports nothing from wslnet)."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the characters that break or reorder a line on screen:
# NEL, the line/paragraph separators, and the bidirectional overrides/isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# CommonMark lets a backslash escape any ASCII punctuation, and only that.
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def _code(m: re.Match[str]) -> str:
    n = ord(m[0])
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def control(text: str) -> str:
    """One line, no escape sequences: each control character becomes `\\xNN`."""
    # Every character _CONTROL matches is non-printable (Cc, Cf, Zl, Zp), so a printable
    # string has none: the common case costs one C call, not a regex pass per log field.
    return text if text.isprintable() else _CONTROL.sub(_code, text)


def markdown(text: str) -> str:
    """Inert Markdown: no link, image, HTML, heading, table cell or mention can start
    inside it, and it renders as exactly `control(text)`."""
    return _PUNCTUATION.sub(r"\\\1", control(text))


def code_span(text: str) -> str:
    """Text inside backticks, with a fence longer than any run of backticks in it."""
    text = control(text) or " "
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    edges = text.startswith(("`", " ")) or text.endswith(("`", " "))
    pad = " " if edges and text.strip() else ""  # CommonMark strips one space each side
    return f"{fence}{pad}{text}{pad}{fence}"
