"""Pure parsers: text in, typed records and the problems found out. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A line a parser could not use: reported to the user, never raised."""

    line: int  # 1-based; 0 for the whole input
    text: str
    why: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.why}: {self.text[:80]!r}"
