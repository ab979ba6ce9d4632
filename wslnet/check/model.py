"""Findings and the declaration of checks. Checks never print; renderers do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from wslnet.verdict import Fix as Fix  # re-exported: checks build fixes with it

if TYPE_CHECKING:
    from wslnet.check.context import Context

Status = Literal["ok", "warn", "fail", "skip", "info", "crash"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip", "info", "crash")


@dataclass(kw_only=True)
class Finding:
    id: str = ""  # stamped by the runner with the id of the check that made it
    status: Status
    title: str
    detail: str = ""
    fix: Fix | None = None
    evidence: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        doc = asdict(self)
        fix = doc["fix"]
        if fix is not None and fix["action"] is None:
            del fix["action"]  # advice only: the shape scripts read before --fix existed
        return doc


def finding(
    status: Status,
    title: str,
    *,
    detail: str = "",
    fix: Fix | None = None,
    evidence: dict[str, object] | None = None,
) -> Finding:
    return Finding(status=status, title=title, detail=detail, fix=fix, evidence=evidence or {})


class _Make(Protocol):
    def __call__(
        self,
        title: str,
        *,
        detail: str = "",
        fix: Fix | None = None,
        evidence: dict[str, object] | None = None,
    ) -> Finding: ...


def _maker(status: Status) -> _Make:
    def make(
        title: str,
        *,
        detail: str = "",
        fix: Fix | None = None,
        evidence: dict[str, object] | None = None,
    ) -> Finding:
        return finding(status, title, detail=detail, fix=fix, evidence=evidence)

    return make


# Where a verdict is made, say it with one of these: ok(title), fail(title, detail=..., fix=...)
ok = _maker("ok")
info = _maker("info")
skip = _maker("skip")
warn = _maker("warn")
fail = _maker("fail")


CheckFunc = Callable[["Context"], Awaitable[list[Finding]]]
Applies = Callable[["Context"], str | None]  # None, or why the check does not apply


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    func: CheckFunc
    applies: Applies
    timeout: float
    budget: float | None = None  # its own budget in place of the run's (the Windows facts)


REGISTRY: list[Check] = []


def always(ctx: Context) -> str | None:
    return None


def check(
    id: str,
    title: str,
    applies: Applies = always,
    timeout: float = 3.0,
    budget: float | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    """Declares a check once: its id, title, when it applies and its time limit."""

    def register(func: CheckFunc) -> CheckFunc:
        REGISTRY.append(Check(id, title, func, applies, timeout, budget))
        return func

    return register
