"""Which fixes wslnet can apply, numbered; what an answer picks; how they batch; and
what the re-check says about each. Pure: findings and text in, values out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from wslnet.check.model import Finding
from wslnet.verdict import WHERES, Action, Where

PROBLEMS = ("warn", "fail", "crash")


@dataclass(frozen=True)
class Item:
    """One action to offer, with the findings it answers (one fix may serve several)."""

    number: int
    action: Action
    findings: tuple[Finding, ...]

    @property
    def checks(self) -> tuple[str, ...]:
        """The checks to run again: the findings' own, then those the action names."""
        ids = [f.id for f in self.findings] + list(self.action.recheck)
        return tuple(dict.fromkeys(ids))


def applicable(findings: list[Finding]) -> list[Item]:
    groups: dict[Action, list[Finding]] = {}
    for f in findings:
        if f.status in PROBLEMS and f.fix is not None and f.fix.action is not None:
            groups.setdefault(f.fix.action, []).append(f)
    return [Item(n, a, tuple(fs)) for n, (a, fs) in enumerate(groups.items(), 1)]


class AnswerError(ValueError):
    pass


LIST = "list"


def parse_answer(text: str, count: int) -> tuple[int, ...] | str:
    """The numbers picked ("y": all, "" or "n": none, "1,3" or "1 3": those), or LIST."""
    words = text.strip().lower().replace(",", " ").split()
    if not words or words in (["n"], ["no"]):
        return ()
    if words in (["y"], ["yes"], ["a"], ["all"]):
        return tuple(range(1, count + 1))
    if words in (["l"], [LIST]):
        return LIST
    picked = []
    for word in words:
        if not word.isdigit() or not 1 <= int(word) <= count:
            raise AnswerError(f"no fix {word!r}: answer y, n, list, or numbers such as 1,2")
        picked.append(int(word))
    return tuple(dict.fromkeys(picked))


@dataclass(frozen=True)
class Batch:
    """The actions that run in one go: one elevated PowerShell, one sudo."""

    where: Where
    actions: tuple[Action, ...]


def batches(actions: list[Action]) -> list[Batch]:
    """One batch per place, Windows first (its prompt is the one a user watches for)."""
    order = sorted(WHERES, key=lambda w: not w.startswith("windows"))
    found = [Batch(w, tuple(a for a in actions if a.where == w)) for w in order]
    return [b for b in found if b.actions]


def reverse(action: Action) -> Action:
    """The action that undoes `action` (and is undone by it)."""
    return replace(
        action,
        summary=action.undo_summary,
        commands=action.undo,
        undo=action.commands,
        undo_summary=action.summary,
        diff=(),  # the undo puts a backup back: no diff of its own to show
        note="",
    )


@dataclass(frozen=True)
class Proof:
    """What the re-check found for one finding an applied fix answered."""

    before: Finding
    after: Finding | None  # None: the check said nothing about it any more

    @property
    def worked(self) -> bool:
        return self.after is None or self.after.status not in PROBLEMS

    @property
    def was(self) -> str:
        state = self.before.evidence.get("state")
        return str(state) if isinstance(state, str) else self.before.status


def _key(f: Finding) -> object:
    """What names one finding among a check's several: its port, its rule, or its title."""
    rule = f.evidence.get("rule")
    if isinstance(rule, dict):  # a portproxy rule is named by where it listens
        return ("rule", rule.get("listen_address"), rule.get("listen_low"))
    if "port" in f.evidence:
        return ("port", f.evidence["port"])
    return f.title


def prove(item: Item, after: list[Finding]) -> list[Proof]:
    """Each finding the fix answered, against the re-check: the same finding (same port,
    rule or title) if the check still reports it; else the check's first ok one (a
    title names its state: "is filtered" became "is open"); else nothing (it is gone)."""
    proofs = []
    for before in item.findings:
        same = [f for f in after if f.id == before.id]
        match = [f for f in same if _key(f) == _key(before)]
        if not match and not isinstance(_key(before), tuple):
            titled = [f for f in same if not isinstance(_key(f), tuple)]
            # its ok line, else a problem it still reports under another title (a
            # resolver that still does not answer is not "no longer reported")
            match = [f for f in titled if f.status == "ok"]
            match = match or [f for f in titled if f.status in PROBLEMS]
        proofs.append(Proof(before, match[0] if match else None))
    return proofs


def after_state(before: list[Finding], after: list[Finding], rerun: set[str]) -> list[Finding]:
    """Every finding as it stands now: the re-run checks' new ones, the others' as they were."""
    return [f for f in before if f.id not in rerun] + after


def failed(findings: list[Finding]) -> bool:
    return any(f.status in ("fail", "crash") for f in findings)
