"""Event log of the forwarder: one line per event, as text or JSON lines, on stderr."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Literal

from wslnet.forward.core.config import LogFormat

Level = Literal["debug", "info", "warning", "error"]
# Every event the forwarder logs: a typo is a type error, not a line nobody can grep for.
Event = Literal[
    "accept-failed",
    "allow-any",
    "api",
    "auto-add",
    "auto-failed",
    "auto-remove",
    "auto-restart",
    "auto-wait",
    "conn",
    "denied",
    "internal-error",
    "listening",
    "no-ipv6",
    "rejected",
    "reload-rejected",
    "reloaded",
    "rule-failed",
    "rule-removed",
    "started",
    "stopped",
    "stopping",
    "target-moved",
    "udp-refused",
    "udp-session",
]
LEVELS: dict[Level, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class EventLog:
    def __init__(self, fmt: LogFormat, verbosity: int, stream: IO[str] | None = None) -> None:
        self.fmt = fmt
        self.threshold = 10 if verbosity > 0 else 30 if verbosity < 0 else 20
        self.stream = stream or sys.stderr

    def enabled(self, level: Level) -> bool:
        return LEVELS[level] >= self.threshold

    def __call__(self, level: Level, event: Event, msg: str = "", **fields: object) -> None:
        if LEVELS[level] < self.threshold:
            return
        now = time.time()
        if self.fmt == "json":
            record: dict[str, object] = {
                "ts": round(now, 6),
                "level": level,
                "event": event,
            }
            if msg:
                record["msg"] = msg
            record.update(fields)
            line = json.dumps(record, default=str)
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
            parts = [f"{stamp} {level:<7} {event}"]
            parts += [f"{k}={_text(v)}" for k, v in fields.items()]
            if msg:
                parts.append(f"- {msg}")
            line = " ".join(parts)
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not stop the forwarder


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text
