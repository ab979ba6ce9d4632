"""Who gets one of the API's connection slots: a pure function of the slot table.

Anyone who can connect can hold a slot without asking anything, so a full table must
never lock the local user out (issue 20). When a newcomer finds no room, the connection
idle longest makes room: first one that never sent a request, then one between
requests; one whose request is being answered is never closed. Some slots are for
loopback clients only, and each remote address may hold only a few (loopback is one
address for every program on this machine, so it is bounded by the total alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wslnet.forward.core.admit import allowed
from wslnet.forward.core.rules import Network

TOTAL = 64  # connections at once
LOCAL_ONLY = 16  # of those, slots only loopback clients may take
PER_CLIENT = 8  # connections one remote address may hold


@dataclass(frozen=True, slots=True)
class Slot:
    """One open API connection, as the gate sees it."""

    key: int  # its handle in the caller's table
    host: str  # the client's address
    local: bool  # a loopback client
    asked: bool  # it has sent a request
    busy: bool  # a request of its is being answered
    idle_since: int  # a counter value: when it arrived or its last answer went out


@dataclass(frozen=True, slots=True)
class Limits:
    total: int = TOTAL
    local_only: int = LOCAL_ONLY
    per_client: int = PER_CLIENT
    allow: tuple[Network, ...] | None = None  # --allow; loopback always may


RefuseReason = Literal["no-address", "not-allowed", "per-client", "full"]


@dataclass(frozen=True, slots=True)
class Admit:
    evict: int | None = None  # the key of the slot to close to make room


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: RefuseReason


def is_local(host: str) -> bool:
    return allowed((), host)


def decide(slots: tuple[Slot, ...], peer: object, limits: Limits) -> Admit | Refuse:
    """Admit the peer (closing one idle slot if there is no room), or refuse it."""
    if not (isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[0], str)):
        return Refuse("no-address")
    host: str = peer[0]
    if limits.allow is not None and not allowed(limits.allow, host):
        return Refuse("not-allowed")
    if is_local(host):
        return Admit() if len(slots) < limits.total else _make_room(slots, "full")
    mine = tuple(s for s in slots if s.host == host)
    if len(mine) >= limits.per_client:
        return _make_room(mine, "per-client")
    remote = tuple(s for s in slots if not s.local)
    if len(remote) >= limits.total - limits.local_only:
        return _make_room(remote, "full")
    if len(slots) >= limits.total:  # loopback holds more than its own slots
        return _make_room(remote, "full")
    return Admit()


def _make_room(pool: tuple[Slot, ...], reason: RefuseReason) -> Admit | Refuse:
    victim = idlest(pool)
    return Refuse(reason) if victim is None else Admit(victim.key)


def idlest(pool: tuple[Slot, ...]) -> Slot | None:
    """The slot to close first: never asked anything before asked before; longest idle."""
    idle = [s for s in pool if not s.busy]
    return min(idle, key=lambda s: (s.asked, s.idle_since), default=None)
