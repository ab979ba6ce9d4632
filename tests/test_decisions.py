"""The forwarder's decisions with no sockets, in mitmproxy's playbook style: events go
in (a peer arrives, a datagram, a sweep, an ICMP error, a dial's verdict), and what the
core decides comes out (a refusal, datagrams sent, a session or connection ended, the
counters and log lines). The lab proves the wiring; these prove the rules."""

from __future__ import annotations

import asyncio
import io
import socket
from typing import Any, cast

import pytest

from wslnet.forward.core.admit import Refusal, admit, evictee, udp_budget
from wslnet.forward.core.conn import Connection, IllegalMove, State
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.resolve import Resolver
from wslnet.forward.core.rules import Rule, parse_networks, parse_rule
from wslnet.forward.core.stats import Counters
from wslnet.forward.core.table import RuleState
from wslnet.forward.core.udp import SessionBudget, UdpRule
from wslnet.forward.data.address import Address
from wslnet.forward.data.ends import SHUTDOWN, End
from wslnet.forward.data.udp_port import DatagramPort, OnDatagram, OnError

LAN = parse_networks(["198.19.0.0/24"], "--allow")


def rule(allow: bool = True, proto: str = "tcp") -> Rule:
    return parse_rule(f"{proto}/0.0.0.0:0=198.18.5.20:9", LAN if allow else None)


# -- admission: one decision for TCP and UDP ---------------------------------------------
@pytest.mark.parametrize(
    ("peer", "open_now", "looped", "refusal"),
    [
        (("198.19.0.50", 4000), 0, False, None),
        (("198.19.1.50", 4000), 0, False, Refusal("not-allowed")),
        (("::ffff:198.19.0.50", 4000, 0, 0), 0, False, None),  # IPv4 as a v6 socket sees it
        (("198.19.0.50", 4000), 2, False, Refusal("max", 2)),
        (("198.19.1.50", 4000), 2, False, Refusal("not-allowed")),  # who before how many
        (("198.19.0.50", 4000), 0, True, Refusal("loop")),
        (None, 0, False, Refusal("no-address")),  # Windows' recvfrom after an ICMP error
        ("198.19.0.50", 0, False, Refusal("no-address")),
        ((), 0, False, Refusal("no-address")),
    ],
)
def test_admission(peer: object, open_now: int, looped: bool, refusal: Refusal | None) -> None:
    assert admit(rule(), peer, open_now, 2, looped) == refusal


@pytest.mark.parametrize(
    "peer", [("127.0.0.1", 1), ("127.9.9.9", 1), ("::1", 1, 0, 0), ("::ffff:127.0.0.1", 1, 0, 0)]
)
def test_loopback_is_this_machine_and_always_on_the_allow_list(peer: object) -> None:
    assert admit(rule(), peer, 0, None) is None


def test_without_an_allow_list_only_a_real_address_is_needed() -> None:
    assert admit(rule(allow=False), ("203.0.113.9", 1), 0, None) is None
    assert admit(rule(allow=False), None, 0, None) == Refusal("no-address")


def test_each_refusal_has_one_counter() -> None:
    counters = Counters()
    for refusal in ("not-allowed", "no-address", "max", "loop"):
        counters.refused(Refusal(refusal))
    assert (counters.accepted, counters.denied, counters.rejected) == (0, 2, 2)
    assert not counters.ended  # refused ones never ended: they never began


def test_only_the_unusual_ends_are_counted_as_errors() -> None:
    counters = Counters()
    for end in (End("closed"), End("idle-timeout"), SHUTDOWN, End("connect-dns", "x")):
        counters.finished(end, 1, 2)
    assert dict(counters.ended) == {"connect-dns": 1} and (counters.up, counters.down) == (4, 8)


def test_end_reasons_read_as_the_log_always_said() -> None:
    assert str(End("closed")) == "closed"
    assert str(End("connect-dns", "cannot resolve 'x'")) == "connect-dns: cannot resolve 'x'"
    icmp = End("target-unreachable", "ICMP port unreachable")
    assert str(icmp) == "target-unreachable (ICMP port unreachable)"


# -- a UDP session's life ----------------------------------------------------------------
class FakePort:
    """A DatagramPort that records what the core asks of it."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.started = self.closed = False
        self.dropped = 0

    def send(self, data: bytes, addr: Any = None) -> None:
        self.sent.append((data, addr))

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True


class UdpPlay:
    """A UdpRule with no sockets: datagrams in, ports opened and lines logged out."""

    def __init__(self, max_sessions: int = 8, budget: SessionBudget | None = None) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []
        log = EventLog("json", 0, io.StringIO())
        log.observers.append(lambda level, event, msg, fields: self.lines.append((event, fields)))
        self.opened: list[tuple[Address, FakePort]] = []
        self.counters = Counters()
        loop = asyncio.get_running_loop()
        self.rule = UdpRule(rule(proto="udp"), 1, [], Resolver(loop), log, 60.0,
                            max_sessions, self.counters, self.open, budget)  # fmt: skip
        self.via = FakePort()  # the listening socket clients write to

    def open(
        self, loop: asyncio.AbstractEventLoop, addr: Address, on_dgram: OnDatagram, on_err: OnError
    ) -> DatagramPort:
        port = FakePort()
        self.opened.append((addr, port))
        return cast(DatagramPort, port)

    def datagram(self, data: bytes, peer: object) -> None:
        self.rule.from_client(cast(DatagramPort, self.via), data, peer)

    def events(self, name: str) -> list[dict[str, object]]:
        return [fields for event, fields in self.lines if event == name]


CLIENT = ("198.19.0.50", 5353)


async def test_a_session_opens_on_the_first_datagram_and_carries_both_ways() -> None:
    play = UdpPlay()
    play.datagram(b"one", CLIENT)
    play.datagram(b"two", CLIENT)
    [(addr, upstream)] = play.opened  # one session, one socket towards the target
    assert addr == (socket.AF_INET, ("198.18.5.20", 9)) and upstream.started
    assert upstream.sent == [(b"one", None), (b"two", None)]
    play.rule.sessions[CLIENT].from_target(b"reply", None)
    assert play.via.sent == [(b"reply", CLIENT)]  # back through the socket the client used
    assert play.counters.accepted == 1


async def test_an_idle_session_ends_after_the_timeout_and_not_before() -> None:
    play = UdpPlay()
    play.datagram(b"x", CLIENT)
    session = play.rule.sessions[CLIENT]
    play.rule.sweep(session.last + 1)  # traffic since the last sweep: alive, clock reset
    play.rule.sweep(session.last + 59)
    assert CLIENT in play.rule.sessions
    play.rule.sweep(session.last + 60)
    assert CLIENT not in play.rule.sessions and play.opened[0][1].closed
    [line] = play.events("udp-session")
    assert (line["reason"], line["datagrams_up"]) == ("idle-timeout", 1)
    assert not play.counters.ended  # an ordinary end


async def test_icmp_port_unreachable_ends_the_session_as_an_error() -> None:
    play = UdpPlay()
    play.datagram(b"x", CLIENT)
    play.rule.sessions[CLIENT].target_error(ConnectionRefusedError())
    assert play.rule.sessions == {}
    assert play.events("udp-session")[0]["reason"] == "target-unreachable (ICMP port unreachable)"
    assert dict(play.counters.ended) == {"target-unreachable": 1}
    play.datagram(b"again", CLIENT)  # the client may try again: a new session
    assert len(play.opened) == 2


async def test_a_datagram_without_an_address_opens_no_session() -> None:
    play = UdpPlay()
    play.datagram(b"x", None)
    assert play.opened == [] and play.rule.sessions == {}
    assert play.counters.denied == 1 and play.events("denied")[0]["reason"] == "no-address"


OTHER, NEWCOMER = ("198.19.0.51", 5353), ("198.19.0.52", 5353)


async def test_at_the_rule_cap_the_longest_idle_session_makes_room_for_a_newcomer() -> None:
    play = UdpPlay(max_sessions=2)
    play.datagram(b"x", CLIENT)
    play.datagram(b"x", OTHER)
    now = play.rule.sessions[OTHER].last
    play.rule.sweep(now + 1)
    play.datagram(b"still here", CLIENT)  # CLIENT talks on; OTHER falls silent
    play.rule.sweep(now + 2)
    play.datagram(b"hello", NEWCOMER)
    assert list(play.rule.sessions) == [CLIENT, NEWCOMER]
    assert play.opened[1][1].closed and play.opened[2][1].sent == [(b"hello", None)]
    [line] = play.events("udp-session")
    assert (line["client"], line["reason"]) == (
        "198.19.0.51:5353",
        "evicted: longest idle, the rule at --udp-max-sessions",
    )
    assert (play.counters.accepted, play.counters.rejected) == (3, 0)
    assert dict(play.counters.ended) == {"evicted": 1}


async def test_at_the_budget_the_longest_idle_session_of_any_rule_makes_room() -> None:
    budget = SessionBudget(2)
    quiet, busy = UdpPlay(budget=budget), UdpPlay(budget=budget)
    quiet.datagram(b"x", CLIENT)
    busy.datagram(b"x", OTHER)
    now = busy.rule.sessions[OTHER].last
    quiet.rule.sweep(now + 1)
    busy.rule.sweep(now + 1)
    busy.datagram(b"y", OTHER)
    busy.rule.sweep(now + 2)  # OTHER moved since; CLIENT, on the other rule, did not
    busy.datagram(b"hello", NEWCOMER)
    assert (list(quiet.rule.sessions), list(busy.rule.sessions)) == ([], [OTHER, NEWCOMER])
    assert quiet.events("udp-session")[0]["reason"] == (
        "evicted: longest idle, all rules at the descriptor budget"
    )
    assert budget.used == 2
    quiet.rule.close()
    busy.rule.close()
    assert (budget.used, budget.rules) == (0, [])


@pytest.mark.parametrize(
    ("heads", "own", "victim"),
    [
        ([5.0, 3.0, None], None, 1),  # the budget: the longest idle of all rules
        ([5.0, 3.0], 0, 0),  # the rule's own cap: its own, however fresh
        ([None, None], None, None),  # nothing to evict
        ([None, 2.0], 0, None),
        ([4.0, 4.0], None, 0),
    ],
)
def test_which_pool_gives_up_a_session(
    heads: list[float | None], own: int | None, victim: int | None
) -> None:
    assert evictee(heads, own) == victim


def test_udp_sessions_may_take_half_the_descriptor_limit() -> None:
    assert (udp_budget(1024), udp_budget(1 << 20), udp_budget(1)) == (512, 1 << 19, 1)


async def test_clients_off_the_allow_list_open_nothing() -> None:
    play = UdpPlay()
    play.datagram(b"x", ("198.19.1.9", 53))
    assert play.opened == [] and play.counters.denied == 1
    assert play.events("denied")[0]["reason"] == "not-allowed"


# -- a connection's states: dialling -> relaying -> ended --------------------------------
class FakeSock:
    def __init__(self) -> None:
        self.closed = False
        self.reset = False

    def setsockopt(self, *args: object) -> None:
        self.reset = True  # SO_LINGER 0: the close sends a reset

    def close(self) -> None:
        self.closed = True


class FakeRelay:
    def __init__(self, on_end: Any) -> None:
        self.on_end = on_end
        self.started = False
        self.aborted: End | None = None
        self.up = self.down = 0

    def start(self) -> None:
        self.started = True

    def abort(self, reason: End) -> None:
        self.aborted = reason


class Owner:
    def __init__(self) -> None:
        self.loop = cast(asyncio.AbstractEventLoop, None)
        self.resolver = cast(Resolver, type("R", (), {"forget": lambda self, t: None})())
        self.own: set[Any] = set()
        self.ends: list[End] = []
        self.relays: list[FakeRelay] = []
        self.relay_factory = self.make_relay

    def make_relay(self, loop: object, c: object, t: object, on_end: Any, s: bool) -> Any:
        self.relays.append(FakeRelay(on_end))
        return self.relays[-1]

    def ended(self, conn: Connection, reason: End) -> None:
        self.ends.append(reason)


def connection() -> tuple[Connection, Owner, FakeSock]:
    owner, csock = Owner(), FakeSock()
    rs = RuleState(1, rule(), "cli")
    conn = Connection(1, rs, ("198.19.0.50", 1), cast(socket.socket, csock), 0.0, cast(Any, owner))
    rs.active.add(conn)
    return conn, owner, csock


def test_a_connection_dials_relays_and_ends_once() -> None:
    conn, owner, csock = connection()
    states = [conn.state]
    conn.dialed(cast(socket.socket, FakeSock()), None)
    states.append(conn.state)
    assert owner.relays[0].started
    owner.relays[0].on_end(End("closed"))
    states.append(conn.state)
    assert states == [State.DIALLING, State.RELAYING, State.ENDED] and owner.ends == [End("closed")]
    assert not csock.closed  # the relay owned (and closed) it


def test_a_failed_dial_ends_the_connection_with_a_reset() -> None:
    conn, owner, csock = connection()
    conn.dialed(None, End("connect-refused"))
    assert conn.state is State.ENDED and owner.ends == [End("connect-refused")]
    assert csock.closed and csock.reset


def test_abort_while_relaying_goes_through_the_relay() -> None:
    conn, owner, _ = connection()
    conn.dialed(cast(socket.socket, FakeSock()), None)
    conn.abort(SHUTDOWN)
    assert owner.relays[0].aborted == SHUTDOWN and conn.state is State.RELAYING
    owner.relays[0].on_end(SHUTDOWN)
    assert owner.ends == [SHUTDOWN]


def test_abort_while_dialling_ends_at_once() -> None:
    conn, owner, csock = connection()
    conn.abort(SHUTDOWN)
    assert conn.state is State.ENDED and owner.ends == [SHUTDOWN] and csock.reset


@pytest.mark.parametrize(
    "move",
    [
        lambda conn: conn.end(End("closed")),
        lambda conn: conn.abort(SHUTDOWN),
        lambda conn: conn.dialed(cast(socket.socket, FakeSock()), None),
    ],
    ids=["end", "abort", "relay"],
)
def test_nothing_moves_a_connection_once_ended(move: Any) -> None:
    conn, owner, _ = connection()
    conn.dialed(None, End("connect-timeout"))
    with pytest.raises(IllegalMove):
        move(conn)
    assert owner.ends == [End("connect-timeout")]  # counted and logged once


def test_a_relaying_connection_cannot_be_relayed_again() -> None:
    conn, _, _ = connection()
    conn.dialed(cast(socket.socket, FakeSock()), None)
    with pytest.raises(IllegalMove, match="relaying -> relaying"):
        conn.connected(cast(socket.socket, FakeSock()))
