"""Event log of the forwarder: one line per event, as text or JSON lines, on stderr."""

from __future__ import annotations

import json
import sys
import time
from typing import IO

from wslnet.forward.config import LogFormat

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_ORDINARY_ENDS = ("closed", "idle-timeout", "shutdown")


def reason_key(reason: str) -> str:
    """The kind of an end reason, for counters: `connect-dns: ...` -> `connect-dns`."""
    return reason.split(":")[0].split(" (")[0]


def end_level(reason: str) -> str:
    """Connections and sessions that end the ordinary way are info; the rest, warnings."""
    return "info" if reason in _ORDINARY_ENDS else "warning"


class EventLog:
    def __init__(self, fmt: LogFormat, verbosity: int, stream: IO[str] | None = None) -> None:
        self.fmt = fmt
        self.threshold = 10 if verbosity > 0 else 30 if verbosity < 0 else 20
        self.stream = stream or sys.stderr

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def __call__(self, level: str, event: str, msg: str = "", **fields: object) -> None:
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
