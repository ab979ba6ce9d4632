"""The last 15 minutes per rule, kept by the forwarder so a page opened after an incident
sees it: one-second buckets of bytes moved and open connections.

`Series.record` is pure (totals in, buckets out); `Sampler` is the background task that
feeds it from the rule table once a second. A sample reads counters only (no I/O, no
await), so it cannot hold up forwarding; a sample that raises is logged and the next
one runs, and a sampler that stops for any other reason than being cancelled says so.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from wslnet.contract import document
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.table import RuleTable

KEEP = 900  # buckets (seconds) per rule: 15 minutes
INTERVAL = 1.0


@dataclass
class Series:
    """One rule's buckets; bucket i covers the wall-clock second `start + i`."""

    rule: int
    start: int = 0
    up: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=KEEP))
    down: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=KEEP))
    active: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=KEEP))
    totals: tuple[int, int] | None = None  # (up, down) at the last sample

    def record(self, second: int, up: int, down: int, active: int) -> None:
        """Bytes moved since the last sample go to `second`'s bucket (missed seconds are
        empty); the first sample only sets the baseline."""
        if self.totals is None:
            self.totals, self.start = (up, down), second
            self._push(0, 0, active)
            return
        du, dd = max(0, up - self.totals[0]), max(0, down - self.totals[1])
        self.totals = (up, down)
        last = self.start + len(self.up) - 1
        if second <= last:  # the clock stepped back, or two samples in one second
            self.up[-1] += du
            self.down[-1] += dd
            self.active[-1] = active
            return
        for _ in range(min(second - last - 1, KEEP)):
            self._push(0, 0, self.active[-1])
        self._push(du, dd, active)
        self.start = second - len(self.up) + 1

    def _push(self, up: int, down: int, active: int) -> None:
        self.up.append(up)
        self.down.append(down)
        self.active.append(active)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "start": self.start,
            "up": list(self.up),
            "down": list(self.down),
            "active": list(self.active),
        }


class History:
    """Every running rule's series; a rule that is gone is forgotten with its series."""

    def __init__(self) -> None:
        self.series: dict[int, Series] = {}

    def sample(self, table: RuleTable, now: float) -> None:
        second = int(now)
        present = set()
        for rs in table.rules:
            present.add(rs.id)
            active, up, down = rs.live()
            self.series.setdefault(rs.id, Series(rs.id)).record(second, up, down, active)
        for gone in self.series.keys() - present:
            del self.series[gone]

    def as_json(self, now: float) -> dict[str, Any]:
        rules = [s.as_json() for s in self.series.values()]
        return document(interval=INTERVAL, now=now, rules=rules)


class Sampler:
    def __init__(self, history: History, table: RuleTable, log: EventLog) -> None:
        self.history, self.table, self.log = history, table, log
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.task.add_done_callback(self._ended)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                self.history.sample(self.table, time.time())
            except Exception as exc:
                msg = f"history sample: {type(exc).__name__}: {exc}"
                self.log.limited("history", "error", "internal-error", msg=msg)
            # Wake mid-second: a wake-up up to half a second late still lands in its own
            # bucket, so a steady transfer does not read as a double bucket and an empty one.
            await asyncio.sleep(INTERVAL - ((time.time() - 0.5) % INTERVAL))

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        msg = f"history sampler stopped: {type(exc).__name__ if exc else 'returned'}"
        self.log("error", "internal-error", msg=msg)
