"""Event log of the forwarder: one line per event, as text or JSON lines, on stderr."""

from __future__ import annotations

import json
import os
import queue
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from wslnet.errors import UsageError
from wslnet.escape import control
from wslnet.forward.core.config import LogFormat

Level = Literal["debug", "info", "warning", "error"]
# Every event the forwarder logs: a typo is a type error, not a line nobody can grep for.
Event = Literal[
    "accept-failed",
    "allow-any",
    "api",
    "api-error",
    "auto-add",
    "auto-failed",
    "auto-remove",
    "auto-restart",
    "auto-wait",
    "conn",
    "denied",
    "firewall-hint",
    "internal-error",
    "listening",
    "log-dropped",
    "log-file",
    "no-ipv6",
    "rejected",
    "register-failed",
    "reload-rejected",
    "reloaded",
    "resolve-failed",
    "resolved",
    "rule-failed",
    "rule-removed",
    "started",
    "stopped",
    "stopping",
    "target-down",
    "target-moved",
    "udp-refused",
    "udp-session",
]
LEVELS: dict[Level, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class EventLog:
    """Lines are formatted and written by a thread of their own, through a bounded
    queue: a stderr that nobody reads (a full pipe) or a slow disk can delay the log,
    never the forwarding. When the queue is full new lines are dropped and counted; a
    `log-dropped` line says how many once the writer catches up."""

    def __init__(
        self,
        fmt: LogFormat,
        verbosity: int,
        stream: IO[str] | None = None,
        queue_size: int = 10_000,
        log_file: Path | None = None,
    ) -> None:
        self.fmt = fmt
        self.threshold = 10 if verbosity > 0 else 30 if verbosity < 0 else 20
        if stream is None and log_file is None and sys.stderr is None:
            log_file = default_log_file()  # windowless (pythonw, a scheduled task)
        self.stream: IO[str] | RotatingFile = (
            RotatingFile(log_file, self._file_trouble)
            if log_file is not None
            else stream or sys.stderr
        )
        self.dropped = 0  # lines lost to a full queue, in all
        self._unreported = 0  # of those, the ones no log-dropped line has told of yet
        self._queue: queue.Queue[_Record | threading.Event | None] = queue.Queue(queue_size)
        self._limits: dict[str, _Limit] = {}
        # Called on the event loop for every event, before the threshold: keep them cheap.
        self.observers: list[Callable[[Level, Event, str, dict[str, object]], None]] = []
        self._lock = threading.Lock()  # the drop counts, shared with the writer
        self._writer = threading.Thread(target=self._write_lines, name="wslnet-log", daemon=True)
        self._writer.start()
        if isinstance(self.stream, RotatingFile) and self.stream.shared:
            where = control(str(self.stream.path))
            self("warning", "log-file", f"another program writes to {where} too: it is not "
                 "rotated from here; give each forwarder a --log-file of its own")  # fmt: skip

    def enabled(self, level: Level) -> bool:
        return LEVELS[level] >= self.threshold

    def __call__(self, level: Level, event: Event, msg: str = "", **fields: object) -> None:
        if self.observers:
            for observe in self.observers:
                observe(level, event, msg, fields)
        if LEVELS[level] < self.threshold:
            return
        try:
            self._queue.put_nowait((time.time(), level, event, msg, fields))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                self._unreported += 1

    def limited(self, key: str, level: Level, event: Event, /, **fields: object) -> None:
        """Logs a line that may repeat many times a second (a denied client, accept
        failing at the fd limit) at most once a second per `key`; the next line says
        how many were left out (`repeated=N`)."""
        now = time.monotonic()
        if key not in self._limits and len(self._limits) >= MAX_LIMIT_KEYS:
            key = event  # keys are per rule and reason, never many: past that, per kind
        limit = self._limits.get(key)
        if limit is not None and now < limit.until:
            limit.skipped += 1
            return
        if limit is None:
            limit = self._limits[key] = _Limit()
        if limit.skipped:
            fields["repeated"] = limit.skipped
        limit.until, limit.skipped = now + 1.0, 0
        msg = fields.pop("msg", "")
        self(level, event, str(msg), **fields)

    def flush(self, timeout: float = 2.0) -> bool:
        """Waits until every line given so far is written (False if that took too long)."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Writes what is queued (for at most `timeout` seconds) and stops the writer."""
        self.flush(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the writer is stuck on a full pipe: it is a daemon, let it be

    def _write_lines(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self._unreported:
                with self._lock:
                    lost, self._unreported = self._unreported, 0
                self._write(
                    self._format(time.time(), "warning", "log-dropped", "", {"lines": lost})
                )
            self._write(self._format(*item))

    def _file_trouble(self, msg: str) -> None:
        """Told by the log file from the writer thread (rotation failed): one line."""
        self._write(self._format(time.time(), "warning", "log-file", msg, {}))

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # a closed (or absent) stderr must not stop the forwarder

    def _format(
        self, now: float, level: Level, event: Event, msg: str, fields: dict[str, object]
    ) -> str:
        if self.fmt == "json":
            record: dict[str, object] = {
                "schema": 1,  # the JSON contract (wslnet/schemas/log.json)
                "ts": round(now, 6),
                "level": level,
                "event": event,
            }
            if msg:
                record["msg"] = control(msg)
            # Fields carry text from outside (paths, headers, host names): a reader that
            # prints the decoded value must not meet a line break or a terminal escape.
            record.update({k: control(v) if isinstance(v, str) else v for k, v in fields.items()})
            return json.dumps(record, default=str)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        parts = [f"{stamp} {level:<7} {event}"]
        parts += [f"{control(k)}={_text(v)}" for k, v in fields.items()]
        if msg:
            parts.append(f"- {control(msg)}")
        return " ".join(parts)


_Record = tuple[float, Level, Event, str, dict[str, object]]
MAX_LIMIT_KEYS = 256


def default_log_file() -> Path:
    """%LOCALAPPDATA%\\wslnet\\forward.log on Windows, $XDG_STATE_HOME/wslnet elsewhere."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "wslnet" / "forward.log"


class RotatingFile:
    """A log file that moves aside at `max_bytes` (forward.log.1, .2, ...), keeping
    `keep` old ones. Used from the log's writer thread only.

    Only a regular file is rotated: a device (/dev/null, a terminal) is written and never
    renamed. A pipe is refused at start: nobody may read it (open would hang) and stderr
    is the default anyway. When rotation cannot rename, the lines go on into the same
    file and `trouble` is told once."""

    def __init__(
        self,
        path: Path,
        trouble: Callable[[str], None] = lambda msg: None,
        max_bytes: int = 5 << 20,
        keep: int = 3,
    ) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self.trouble = trouble
        self.told = False
        self.file = _open_log(path)
        self.regular = stat.S_ISREG(os.fstat(self.file.fileno()).st_mode)
        self.size = self.file.tell() if self.regular else 0
        self.rotate_at = max_bytes
        self.shared = self.regular and not _lock(self.file)
        self.rotates = self.regular and not self.shared  # two rotating one file lose lines

    def write(self, text: str) -> int:
        if self.rotates and self.size + len(text) > self.rotate_at and self.size > 0:
            self._rotate()
        self.size += len(text)
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def _rotate(self) -> None:
        self.file.close()  # Windows renames no file that is open
        try:
            for n in range(self.keep - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        except OSError as exc:
            self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self.rotate_at = self.size + self.max_bytes  # try again one file later
            if not self.told:
                self.told = True
                why = exc.strerror or type(exc).__name__
                self.trouble(f"cannot rotate {self.path} ({why}): writing on to it")
            return
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        _lock(self.file)
        self.size, self.rotate_at = 0, self.max_bytes


def _open_log(path: Path) -> IO[str]:
    """The log file opened to append, or one line that says why it cannot be."""
    try:
        mode = path.stat().st_mode  # through links: /dev/stderr is a pipe when stderr is
    except FileNotFoundError:
        mode = 0
    except OSError as exc:
        raise UsageError(f"--log-file {path}: {exc.strerror}") from None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise UsageError(
            f"--log-file {path} is a pipe: give a file, or leave --log-file out to log to stderr"
        )
    if stat.S_ISDIR(mode):
        raise UsageError(f"--log-file {path} is a folder: give a file in it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write --log-file {path}: {why}") from None


def _lock(file: IO[str]) -> bool:
    """Marks the file as this forwarder's (False: another forwarder writes to it)."""
    if sys.platform == "win32":  # another writer shows as a rename that fails
        return True
    import fcntl

    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class _Limit:
    __slots__ = ("skipped", "until")

    def __init__(self) -> None:
        self.until = 0.0
        self.skipped = 0


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if " " in text or not text:
        return json.dumps(text)  # ASCII: controls and line separators come out as \uXXXX
    return control(text)
