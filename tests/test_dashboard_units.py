"""The dashboard's decisions without a browser or a socket: which Host names are ours,
one-time login codes, the history buckets, the listeners offered for forwarding, the
"open" link, and the redirect file `wslnet dashboard` hands the browser."""

from __future__ import annotations

import pytest

from wslnet.facts.procnet import SocketEntry
from wslnet.forward.control.client import redirect_page
from wslnet.forward.control.history import KEEP, Series
from wslnet.forward.control.sessions import CODE_LIFETIME, Sessions, allowed_hosts, host_allowed
from wslnet.forward.control.status import browser_url
from wslnet.forward.control.unforwarded import Seen, unforwarded

PORT = 7070
V4 = allowed_hosts("127.0.0.1")
V6 = allowed_hosts("::1")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1.evil.example", "127.evil.example", "[::1].evil.example", "localhost.evil.example",
     "127.0.0.1.evil.example:7070", "evil.example", "127.0.0.2", "127.0.0.1:7071", "127.0.0.1:",
     "127.0.0.1:70x", "[::1]", "", "127.0.0.1:7070:1", "localhost:007070"],
)  # fmt: skip
def test_a_rebound_or_foreign_host_is_not_ours(host: str) -> None:
    assert not host_allowed(host, V4, PORT)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:7070", "localhost", "LOCALHOST:7070"])
def test_the_names_the_api_listens_on_are_ours_with_or_without_the_port(host: str) -> None:
    assert host_allowed(host, V4, PORT)


def test_an_ipv6_api_takes_its_bracketed_address_and_localhost_only() -> None:
    assert host_allowed("[::1]:7070", V6, PORT) and host_allowed("localhost", V6, PORT)
    assert not host_allowed("127.0.0.1:7070", V6, PORT)
    assert not host_allowed("[::1]:7070.evil.example", V6, PORT)


def test_a_login_code_works_once_and_not_after_it_expires() -> None:
    s = Sessions()
    code = s.new_code(now=100.0)
    token = s.redeem(code, now=101.0)
    assert token is not None and s.valid(token)
    assert s.redeem(code, now=101.0) is None  # spent
    late = s.new_code(now=100.0)
    assert s.redeem(late, now=100.0 + CODE_LIFETIME + 1) is None
    assert s.redeem(late, now=100.0) is None  # an expired code is spent too
    assert not s.valid("") and not s.valid("guess") and not s.valid("\udcff")


def test_history_buckets_hold_bytes_per_second_and_empty_gaps() -> None:
    s = Series(1)
    s.record(1000, 0, 0, 0)
    s.record(1001, 300, 10, 1)
    s.record(1004, 900, 10, 1)  # two seconds missed: empty buckets, not a spike spread
    assert (s.start, list(s.up), list(s.down)) == (1000, [0, 300, 0, 0, 600], [0, 10, 0, 0, 0])
    s.record(1004, 1000, 10, 2)  # a second sample in the same second adds to it
    assert list(s.up)[-1] == 700 and list(s.active)[-1] == 2
    s.record(1004 + 2 * KEEP, 1000, 10, 0)
    assert len(s.up) == KEEP and s.start == 1004 + KEEP + 1


def test_listeners_offered_are_those_a_dial_to_the_vm_reaches_and_no_rule_targets() -> None:
    def entry(proto: str, address: str, port: int, state: int = 10) -> SocketEntry:
        family = "ipv6" if ":" in address else "ipv4"
        return SocketEntry(proto, family, address, port, "0.0.0.0", 0, state, 1000, 1)  # type: ignore[arg-type]

    seen = Seen(
        [entry("tcp", "0.0.0.0", 3000), entry("tcp", "::", 3000), entry("tcp", "127.0.0.1", 5432),
         entry("tcp", "198.18.5.20", 8000), entry("tcp", "0.0.0.0", 22, state=1),
         entry("udp", "0.0.0.0", 5353, state=7), entry("tcp", "0.0.0.0", 9000)],
        {"198.18.5.20"},
    )  # fmt: skip
    found = unforwarded(seen, {("tcp", 9000)}, "wsl")
    assert [(c.proto, c.port, c.rule) for c in found] == [
        ("tcp", 3000, "tcp/localhost:3000=wsl:3000"),
        ("udp", 5353, "udp/localhost:5353=wsl:5353"),
        ("tcp", 8000, "tcp/localhost:8000=wsl:8000"),
    ]


def test_the_open_link_is_for_tcp_rules_a_browser_may_open() -> None:
    assert browser_url("tcp", ("0.0.0.0", 8080)) == "http://127.0.0.1:8080/"
    assert browser_url("tcp", ("::", 8080)) == "http://[::1]:8080/"
    assert browser_url("tcp", ("127.0.0.1", 22)) is None  # browsers refuse port 22
    assert browser_url("udp", ("127.0.0.1", 8080)) is None


def test_the_redirect_page_carries_the_link_escaped() -> None:
    page = redirect_page('http://127.0.0.1:1/#code=a"><script>')
    assert 'content="0;url=http://127.0.0.1:1/#code=a&quot;&gt;&lt;script&gt;"' in page
    assert "<script>" not in page
