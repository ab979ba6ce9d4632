"""Typed values that cross the doctor's layers: a fix, the path to the host, and a
listener's reachability with its cause. A leaf: no I/O, nothing of wslnet imported, so
the fact readers (listeners.py, hostaddr.py) and the verdicts in check/ can all use it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

# Where a fix's commands run: here (this shell), here as root, on Windows in PowerShell,
# or on Windows in PowerShell as Administrator.
Where = Literal["here", "here-root", "windows", "windows-admin"]
WHERES: tuple[Where, ...] = get_args(Where)


def ps_quote(text: str) -> str:
    """A PowerShell single-quoted string: nothing inside expands; a quote is doubled."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Action:
    """What `wslnet check --fix` may do for a fix: where it runs, what it changes (one
    line), the commands, how to undo them, and which checks re-run to prove it worked.
    Built where the verdict is made, from the facts, never parsed out of the fix's prose."""

    where: Where
    summary: str  # what it changes, e.g. "allow inbound on vEthernet (WSL)"
    commands: tuple[str, ...]
    undo: tuple[str, ...]  # run in this order to put things back
    undo_summary: str  # e.g. "remove the rule"
    recheck: tuple[str, ...] = ()  # check ids (besides the finding's own) that prove it
    needs_shutdown: bool = False  # applies only after `wsl --shutdown` (stops every distro)
    diff: tuple[str, ...] = ()  # a file it changes, as `diff -u` prints it: shown before consent
    note: str = ""  # what the user must know before saying yes (a warning, what comes next)


@dataclass
class Fix:
    text: str
    commands: list[str] = field(default_factory=list)
    where: Where = "here"  # set where the verdict is made; every renderer says it
    action: Action | None = None  # what --fix can apply (None: advice only)


@dataclass(frozen=True)
class HostPath:
    """How packets to the host leave here, and whether it answered ARP: the facts that
    tell a firewall's silence from a host that is gone or a route that goes elsewhere."""

    address: str
    interface: str | None  # the route's interface; None: no route at all
    expected: str | None  # the default route's interface (the WSL switch in NAT mode)
    answered_arp: bool | None  # None: no neighbour entry (never tried, or not on-link)

    @property
    def shadowed(self) -> bool:
        """A more specific route (a Docker bridge, a VPN) takes the host's packets."""
        return None not in (self.interface, self.expected) and self.interface != self.expected


# n/a: not in WSL, no relay to judge; if-published: a container's, through docker -p
Reach = Literal["yes", "ipv6-only", "no", "n/a", "if-published"]

# Why a listener is (not) reachable from Windows: what code and the picture switch on.
Cause = Literal[
    "relayed",  # bound to 0.0.0.0, 127.0.0.1 (or ::, ::1 for ipv6-only): the relay forwards it
    "ipv6-only",  # bound to :: or ::1: Windows reaches it as [::1] only
    "bound-to-eth0",  # the relay does not forward the eth0 address (#10206)
    "bound-to-other-loopback",  # 127.x other than 127.0.0.1
    "udp-not-relayed",  # the relay forwards TCP only
    "localhost-forwarding-off",  # localhostForwarding=false in .wslconfig
    "mirrored-shared",  # mirrored mode shares localhost
    "mirrored-ipv4-only",  # mirrored mode reaches Linux over IPv4 only
    "wsl1-shared",  # WSL1 shares Windows' stack
    "no-relay-mode",  # a networking mode without the relay (bridged, none...)
    "not-wsl",  # not in WSL: nothing to judge
    "wsl-dns-tunnel",  # WSL's own DNS tunnel
    "resolved-stub",  # systemd-resolved's stub
    "wslnet-forward",  # a running `wslnet forward`'s own listener
    "container-published",  # a container's: reached through a published port
    "container-loopback",  # a container's loopback: no published port reaches it
    "wslnet-configured",  # the relay misses it; the forwarder's file on Windows forwards it
]
CAUSES: tuple[Cause, ...] = get_args(Cause)


@dataclass(frozen=True)
class Reachability:
    """Whether Windows reaches one listener, why, and what would make it reachable."""

    windows_localhost: Reach
    cause: Cause
    reason: str  # the cause in words, for people
    vm_address: bool  # reachable at the VM's address (from Windows, NAT mode)
    fix: Fix | None = None


@dataclass
class Listener:
    """One listening socket and the verdict on it."""

    proto: str
    family: str
    address: str
    port: int
    pid: int | None
    process: str | None
    windows_localhost: Reach
    cause: Cause
    reason: str
    vm_address: bool
    lan: bool
    fix: Fix | None
    wslnet_rule: int | None = None  # the socket is this rule's of a running wslnet forward

    def as_json(self) -> dict[str, object]:
        doc = asdict(self)
        fix = self.fix
        doc["fix"] = fix.text if fix is not None else None
        doc["fix_commands"] = fix.commands if fix is not None else []
        doc["fix_where"] = fix.where if fix is not None else None
        return doc
