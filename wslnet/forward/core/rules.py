"""Forwarding rules: `[tcp/]LISTEN=TARGET`, parsed without touching the network."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from wslnet.errors import UsageError

Proto = Literal["tcp", "udp"]
Part = Literal["rule", "proto", "listen", "target"]  # the part of a rule an error is about
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RULE_FORM = (
    "[tcp/|udp/][HOST:]PORT[=[HOST:]PORT], e.g. 8080, 8080=3000, 8080=198.18.5.20:8080 "
    "or '[::1]:9000=localhost:9000'"
)
# No listen host: both loopback families, so `localhost` works whichever one a client tries.
LOOPBACK = ""
WSL = "wsl"  # the WSL VM's NAT address, found with wsl.exe
HOST = "host"  # the Windows host as `wslnet ip host` finds it

# RFC 1123 host names; also admits the special names `wsl`, `host` and `wsl@DISTRO`.
# Matched with fullmatch, never `$`: `$` also matches before a final newline, so
# `evil-name\n` would pass as a host name.
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?"
)
_DISTRO_TARGET = re.compile(r"wsl@[A-Za-z0-9._-]+")
_DOCKER_HABIT = re.compile(r"^\s*([0-9]{1,5}):([0-9]{1,5})\s*$")


class RuleError(UsageError):
    def __init__(self, rule: str, part: Part, why: str) -> None:
        shown = rule if len(rule) <= 80 else rule[:80] + "..."
        super().__init__(f"bad rule {shown!r}: {why}; expected {RULE_FORM}")
        self.rule = rule
        self.part = part
        self.why = why


def parse_networks(items: Iterable[object], what: str) -> tuple[Network, ...]:
    """Allow-list entries (`198.19.0.0/24`, `::1`), parsed once wherever they come from."""
    nets = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"{what}: {item!r} is not a network such as 198.19.0.0/24")
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise UsageError(f"{what}: {item!r} is not a network such as 198.19.0.0/24") from None
    return tuple(nets)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        if self.host == LOOPBACK:
            return f"localhost:{self.port}"
        return format_hostport(self.host, self.port)

    @property
    def special(self) -> bool:
        """A target that names the VM or the host rather than an address."""
        return self.host in (WSL, HOST) or self.host.startswith(WSL + "@")

    @property
    def loopback(self) -> bool:
        if self.host == LOOPBACK:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Rule:
    proto: Proto
    listen: Endpoint
    target: Endpoint
    text: str
    allow: tuple[Network, ...] | None = None  # networks that may connect; None: not said

    def __str__(self) -> str:
        return f"{self.proto}/{self.listen}={self.target}"

    def listen_hosts(self) -> list[str]:
        return ["127.0.0.1", "::1"] if self.listen.host == LOOPBACK else [self.listen.host]


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_addr(addr: object) -> str:
    """A socket address tuple (or an Endpoint) as HOST:PORT, for logs and status."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return format_hostport(str(addr[0]), int(addr[1]))
    return str(addr)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_hostport(text: str, rule: str, part: Part) -> tuple[str | None, str]:
    """Splits `HOST:PORT`, `[V6]:PORT` or `PORT` into (host or None, port text)."""
    what = "listen address" if part == "listen" else "target"
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise RuleError(rule, part, f"{what} {text!r} has '[' without ']'")
        host, rest = text[1:end], text[end + 1 :]
        if not rest.startswith(":"):
            raise RuleError(rule, part, f"{what} {text!r} needs a port after ']', as in [::1]:8080")
        if not is_ip(host) or ":" not in host:
            raise RuleError(rule, part, f"{host!r} in brackets is not an IPv6 address")
        return host, rest[1:]
    if text.count(":") > 1:
        raise RuleError(
            rule, part, f"put an IPv6 address in brackets, as in [::1]:8080 (got {text!r})"
        )
    if ":" in text:
        host, port = text.split(":", 1)
        if not host:
            raise RuleError(rule, part, f"{what} {text!r} has an empty host")
        return host, port
    return None, text


def _port(text: str, rule: str, part: Part, allow_zero: bool) -> int:
    if not text:
        raise RuleError(rule, part, f"{part} port is missing")
    # isdigit() alone admits other scripts' digits ('٨٠٨٠') and superscripts.
    if not (text.isascii() and text.isdigit()):
        raise RuleError(rule, part, f"{part} port {text!r} is not a number")
    low = 0 if allow_zero else 1
    if len(text) > 5 or not low <= int(text) <= 65535:
        raise RuleError(rule, part, f"{part} port {text[:12]} is out of range ({low}-65535)")
    return int(text)


def parse_rule(text: str, allow: tuple[Network, ...] | None = None) -> Rule:
    """Parses one rule. A listen port of 0 asks the system for a free port.

    `8080` forwards localhost:8080 to wsl:8080; `8080=3000` to wsl:3000."""
    rule = text.strip()
    if not rule:
        raise RuleError(text, "rule", "the rule is empty")
    proto: Proto = "tcp"
    body = rule
    if "/" in rule.split("=", 1)[0]:
        prefix, body = rule.split("/", 1)
        if prefix.lower() not in ("tcp", "udp"):
            raise RuleError(rule, "proto", f"unknown protocol {prefix!r} (tcp or udp)")
        proto = "tcp" if prefix.lower() == "tcp" else "udp"
    listen_text, _, target_text = body.partition("=")
    target_text = target_text.strip()
    if not listen_text:
        raise RuleError(rule, "listen", "the listen port is missing")
    docker = _DOCKER_HABIT.match(body)
    if docker:  # `-p 8080:3000` in Docker; here LISTEN=TARGET
        raise RuleError(rule, "rule", f"did you mean {docker[1]}={docker[2]}?")
    lhost, lport = _split_hostport(listen_text, rule, "listen")
    if lhost is not None and lhost.lower() == "localhost":
        lhost = LOOPBACK  # both loopback families, as with no host
    if lhost and not is_ip(lhost):
        raise RuleError(
            rule, "listen", f"listen host {lhost!r} must be an IP address such as 127.0.0.1"
        )
    listen = Endpoint(lhost or LOOPBACK, _port(lport, rule, "listen", allow_zero=True))
    if "=" not in body:
        if listen.port == 0:
            raise RuleError(rule, "listen", "port 0 needs a target port (0=PORT)")
        return Rule(proto, listen, Endpoint(WSL, listen.port), rule, allow)
    if not target_text:
        raise RuleError(rule, "target", "the target is missing after '='")
    if target_text.isascii() and target_text.isdigit():
        return Rule(
            proto, listen, Endpoint(WSL, _port(target_text, rule, "target", False)), rule, allow
        )

    thost, tport = _split_hostport(target_text, rule, "target")
    if thost is None:
        raise RuleError(rule, "target", f"target {target_text!r} is neither PORT nor HOST:PORT")
    if not (is_ip(thost) or _HOSTNAME.fullmatch(thost) or _DISTRO_TARGET.fullmatch(thost)):
        raise RuleError(
            rule, "target", f"target host {thost!r} is neither an IP address nor a host name"
        )
    target = Endpoint(thost, _port(tport, rule, "target", allow_zero=False))
    return Rule(proto, listen, target, rule, allow)
