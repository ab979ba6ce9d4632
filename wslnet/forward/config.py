"""Typed settings of a forwarder run, built by the CLI (and later a config file)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wslnet.errors import UsageError
from wslnet.forward.rules import Rule

Engine = Literal["auto", "splice", "protocol"]
LoopName = Literal["auto", "asyncio", "uvloop"]
LogFormat = Literal["text", "json"]

SPLICE_AVAILABLE = sys.platform == "linux"


@dataclass(frozen=True)
class ForwardConfig:
    rules: tuple[Rule, ...]
    connect_timeout: float = 5.0
    idle_timeout: float | None = None
    max_conns: int | None = None
    drain: float = 5.0
    log_format: LogFormat = "text"
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ debug
    engine: Engine = "auto"
    loop: LoopName = "auto"
    allow_any: bool = False
    resolve_interval: float = 30.0  # names, `wsl` and `host` are resolved again this often
    udp_timeout: float = 60.0
    udp_max_sessions: int = 1024
    config_path: Path | None = None  # the TOML file; None: the default one if it exists
    api: tuple[str, int] | None = None  # --api: where the control API listens
    explicit: frozenset[str] = frozenset()  # options given on the command line
    auto: bool = False  # --auto: forward what WSL's relay does not, as listeners come and go
    include: str = ""
    exclude: str = ""
    lan: bool = False
    distro: str | None = None
    allow: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0:
            raise UsageError("--connect-timeout must be more than 0 seconds")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise UsageError("--idle-timeout must be more than 0 seconds")
        if self.max_conns is not None and self.max_conns < 1:
            raise UsageError("--max-conns must be at least 1")
        if self.drain < 0:
            raise UsageError("--drain must be 0 seconds or more")
        if self.resolve_interval <= 0 or self.udp_timeout <= 0 or self.udp_max_sessions < 1:
            raise UsageError("--resolve-interval and --udp-timeout must be more than 0")
        if self.engine == "splice" and not SPLICE_AVAILABLE:
            raise UsageError("--engine splice needs Linux; use --engine protocol")

    @property
    def resolved_engine(self) -> Literal["splice", "protocol"]:
        if self.engine == "auto":
            return "splice" if SPLICE_AVAILABLE else "protocol"
        return self.engine
