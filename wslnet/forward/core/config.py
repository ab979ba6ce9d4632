"""Typed settings of a forwarder run, built by the CLI (with the config file's settings
as click's defaults) before anything listens."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wslnet.errors import UsageError
from wslnet.forward.core.rules import Network, Rule

Engine = Literal["auto", "splice", "protocol"]
LoopName = Literal["auto", "asyncio", "uvloop"]
LogFormat = Literal["text", "json"]

SPLICE_AVAILABLE = sys.platform == "linux"


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high


def parse_ports(text: str, option: str) -> tuple[PortRange, ...]:
    """`3000-9999`, `22,5432` or a mix."""
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        high = high if dash else low
        if not (low.isascii() and low.isdigit() and high.isascii() and high.isdigit()):
            raise UsageError(f"{option} {text!r}: expected ports such as 3000-9999,22")
        if len(low) > 5 or len(high) > 5 or not 1 <= int(low) <= int(high) <= 65535:
            raise UsageError(f"{option} {text!r}: ports run from 1 to 65535, low-high")
        ranges.append(PortRange(int(low), int(high)))
    return tuple(ranges)


@dataclass(frozen=True)
class AutoConfig:
    """--auto: forward what WSL's relay does not, as listeners come and go."""

    include: tuple[PortRange, ...] = ()
    exclude: tuple[PortRange, ...] = ()
    lan: bool = False  # listen on 0.0.0.0 and forward TCP listeners too
    distro: str | None = None

    def keeps(self, port: int) -> bool:
        if self.include and not any(port in r for r in self.include):
            return False
        return not any(port in r for r in self.exclude)


@dataclass(frozen=True)
class ForwardConfig:
    rules: tuple[Rule, ...] = ()
    connect_timeout: float = 5.0
    idle_timeout: float | None = None
    max_conns: int | None = None
    drain: float = 5.0
    log_format: LogFormat = "text"
    log_file: Path | None = None  # --log-file; the default file when there is no stderr
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ debug
    engine: Engine = "auto"
    loop: LoopName = "auto"
    allow_any: bool = False
    resolve_interval: float = 30.0  # names, `wsl` and `host` are resolved again this often
    udp_timeout: float = 60.0
    udp_max_sessions: int = 1024
    udp_budget: int | None = None  # UDP sessions of all rules together (from RLIMIT_NOFILE)
    config_path: Path | None = None  # the TOML file in use, if any
    api: tuple[str, int] | None = None  # --api: where the control API listens
    auto: AutoConfig | None = None
    allow: tuple[Network, ...] | None = None  # --allow, for rules that do not say
    boot: bool = False  # --boot: a `wsl` lookup may start a stopped distribution

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "idle_timeout", "drain", "resolve_interval"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise UsageError(f"--{name.replace('_', '-')} must be a number of seconds")
        if not math.isfinite(self.udp_timeout):
            raise UsageError("--udp-timeout must be a number of seconds")
        if self.connect_timeout <= 0:
            raise UsageError("--connect-timeout must be more than 0 seconds")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise UsageError("--idle-timeout must be more than 0 seconds")
        if self.max_conns is not None and self.max_conns < 1:
            raise UsageError("--max-conns must be at least 1")
        if self.drain < 0:
            raise UsageError("--drain must be 0 seconds or more")
        if self.resolve_interval <= 0:
            raise UsageError("--resolve-interval must be more than 0 seconds")
        if self.udp_timeout <= 0:
            raise UsageError("--udp-timeout must be more than 0 seconds")
        if self.udp_max_sessions < 1:
            raise UsageError("--udp-max-sessions must be at least 1")
        if self.engine == "splice" and not SPLICE_AVAILABLE:
            raise UsageError("--engine splice needs Linux; use --engine protocol")
        if self.auto is not None and self.auto.lan and self.allow is None and not self.allow_any:
            raise UsageError(
                "--auto --lan exposes ports to the LAN: say who may connect "
                "with --allow CIDR, or --allow-any"
            )

    @property
    def resolved_engine(self) -> Literal["splice", "protocol"]:
        if self.engine == "auto":
            return "splice" if SPLICE_AVAILABLE else "protocol"
        return self.engine
