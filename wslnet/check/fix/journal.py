"""The --fix journal: one JSON line per batch applied (what, when, the undo, the checks
that prove it) and one per batch undone. Pure: records in, text out, and back; a line
that does not parse is skipped (a torn write must not hide the batches before it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from wslnet.verdict import WHERES, Action


@dataclass(frozen=True)
class Record:
    kind: str  # "fix" or "undo"
    batch: str  # the batch's id (its time, made unique)
    when: str  # ISO 8601, local time with its offset
    actions: tuple[Action, ...]
    checks: tuple[str, ...] = ()  # the checks to run again after an undo
    host_ports: tuple[int, ...] = ()  # host.reach's --host-port, for that re-run

    def line(self) -> str:
        doc = {"schema": 1, **asdict(self)}
        return json.dumps(doc, sort_keys=True) + "\n"


def _action(doc: Any) -> Action:
    if not isinstance(doc, dict) or doc.get("where") not in WHERES:
        raise ValueError("not an action")

    def strings(name: str) -> tuple[str, ...]:
        value = doc.get(name)
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ValueError(f"{name} is not a list of strings")
        return tuple(value)

    return Action(doc["where"], str(doc.get("summary", "")), strings("commands"),
                  strings("undo"), str(doc.get("undo_summary", "")), strings("recheck"),
                  doc.get("needs_shutdown") is True)  # fmt: skip


def parse(text: str) -> list[Record]:
    found = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
            actions = tuple(_action(a) for a in doc["actions"])
            checks = tuple(str(c) for c in doc.get("checks", []))
            ports = tuple(p for p in doc.get("host_ports", []) if isinstance(p, int))
            record = Record(str(doc["kind"]), str(doc["batch"]), str(doc["when"]), actions)
            found.append(replace(record, checks=checks, host_ports=ports))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def last_undoable(records: list[Record]) -> Record | None:
    """The latest batch applied and not undone yet (so --undo twice goes back further)."""
    undone = {r.batch for r in records if r.kind == "undo"}
    fixes = [r for r in records if r.kind == "fix" and r.batch not in undone]
    return fixes[-1] if fixes else None
