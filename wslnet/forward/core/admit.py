"""Who may open a connection (TCP) or a session (UDP): one decision for both protocols.

Pure: the caller says who the peer is, how many are open, the limit and whether the
peer is the forwarder's own dial coming back; the answer is a typed Refusal or None.
Checked in this order: the peer address, the allow list, the limit, the loop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from wslnet.forward.core.log import Event, EventLog
from wslnet.forward.core.rules import Network, Proto, Rule, format_addr

RefusalKind = Literal["not-allowed", "no-address", "max", "loop"]


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: RefusalKind
    limit: int | None = None  # for "max": the limit that was reached

    @property
    def denied(self) -> bool:
        """Refused for who the peer is (counted as denied), not for the forwarder's state
        (rejected)."""
        return self.kind in ("not-allowed", "no-address")


NOT_ALLOWED = Refusal("not-allowed")
NO_ADDRESS = Refusal("no-address")
LOOP = Refusal("loop")


def admit(
    rule: Rule, peer: object, open_now: int, limit: int | None, looped: bool = False
) -> Refusal | None:
    """None to admit the peer, else why not. `peer` is the address as accept() or
    recvfrom() gave it: anything but an (host, port, ...) tuple is refused, whatever the
    allow list (Windows' recvfrom gives None after an ICMP error, CPython 3.11.9+)."""
    if not (isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[0], str)):
        return NO_ADDRESS
    if rule.allow is not None and not allowed(rule.allow, peer[0]):
        return NOT_ALLOWED
    if limit is not None and open_now >= limit:
        return Refusal("max", limit)
    if looped:
        return LOOP
    return None


def allowed(allow: tuple[Network, ...], host: str) -> bool:
    """Whether a peer's host is on the allow list. Loopback peers (127.0.0.0/8, ::1 and
    ::ffff:127.x) are this machine: always allowed."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or any(ip in net for net in allow)


def udp_budget(nofile: int) -> int:
    """UDP sessions all rules together may hold under a descriptor limit of `nofile`: half
    of it, one socket each. The other half is kept for the listening sockets, TCP
    connections (two sockets and up to four pipe ends each), the API and the loop's own:
    a flood at the per-rule cap once took every descriptor and TCP stopped (issue 20)."""
    return max(nofile // 2, 1)


def evictee(heads: Sequence[float | None], own: int | None) -> int | None:
    """Which pool of sessions gives one up so that a newcomer gets in, instead of being
    locked out until the idle timeout. `heads[i]` is when pool i's longest-idle session
    last moved (None: pool i is empty); `own` is the newcomer's pool when that pool is at
    its own cap (it gives up its own), None when the shared budget is full (the longest
    idle of all pools goes). None: nothing to evict."""
    if own is not None:
        return own if heads[own] is not None else None
    idle = [(since, i) for i, since in enumerate(heads) if since is not None]
    return min(idle)[1] if idle else None


_MAX_REASON: dict[Proto, str] = {"tcp": "max-conns", "udp": "max-sessions"}


def log_refusal(log: EventLog, rule_id: int, proto: Proto, peer: object, no: Refusal) -> None:
    """The refusal's line, at most once a second per rule and reason (a flood repeats)."""
    reason = _MAX_REASON[proto] if no.kind == "max" else no.kind
    event: Event
    if no.denied:
        event, key = "denied", f"denied:{rule_id}:{proto}"
    elif proto == "udp":
        event, key = "udp-refused", f"udp-refused:{rule_id}"
    else:
        event, key = "rejected", f"rejected:{rule_id}:{reason}"
    fields: dict[str, object] = {"limit": no.limit} if no.limit is not None else {}
    client = format_addr(peer)
    log.limited(key, "warning", event, rule=rule_id, client=client, reason=reason, **fields)
