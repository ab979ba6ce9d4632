"""The forwarder's core in process, on real loopback sockets: rules come and go through
the table, connections are relayed by both engines, the allow list and the limit hold,
and a rule that cannot listen says why with its errno."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import socket
from collections.abc import AsyncIterator

import pytest

from wslnet.errors import ListenError, UsageError
from wslnet.forward.core.config import SPLICE_AVAILABLE, ForwardConfig
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.rules import parse_networks, parse_rule
from wslnet.forward.core.server import Forwarder

ENGINES = ["splice", "protocol"] if SPLICE_AVAILABLE else ["protocol"]  # splice: Linux


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


class Run:
    """A Forwarder in this test's loop, its log lines kept as JSON."""

    def __init__(self, **settings: object) -> None:
        self.stream = io.StringIO()
        config = ForwardConfig(log_format="json", **settings)  # type: ignore[arg-type]
        self.fwd = Forwarder(config, EventLog("json", 0, self.stream))

    def events(self, name: str) -> list[dict[str, object]]:
        assert self.fwd.log.flush()  # lines are written by the log's own thread
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in lines if e["event"] == name]

    def port(self, rule_id: int) -> int:
        rs = self.fwd.table.find(rule_id)
        assert rs is not None
        return int(rs.listeners[0].sock.getsockname()[1])

    async def stop(self) -> None:
        self.fwd.request_stop()
        await self.fwd.shutdown()


async def talk(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    writer.write_eof()
    got = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return got


async def ended_by_forwarder(port: int) -> bool:
    """True when the forwarder ends a new connection at once (end of file, or a reset,
    which may even beat the end of connect())."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await asyncio.wait_for(reader.read(1), 5)
    except ConnectionResetError:
        return True
    writer.close()
    return data == b""


@pytest.mark.parametrize("engine", ENGINES)
async def test_both_loopbacks_relay_and_half_close_through_each_engine(
    echo_port: int, engine: str
) -> None:
    run = Run(engine=engine)
    await run.fwd.startup([(parse_rule(f"0=127.0.0.1:{echo_port}"), "cli")])
    port = run.port(1)
    payload = bytes(range(256)) * 1000
    assert await talk(port, payload) == payload
    assert await talk(port, b"v6", "::1") == b"v6"
    await run.stop()
    ends = run.events("conn")
    assert [(e["up"], e["down"], e["reason"]) for e in ends] == [
        (len(payload), len(payload), "closed"),
        (2, 2, "closed"),
    ]
    assert run.fwd.active == 0


async def test_apply_replaces_only_the_rules_of_its_origin(echo_port: int) -> None:
    run = Run()
    keep = parse_rule(f"127.0.0.1:0=127.0.0.1:{echo_port}")
    await run.fwd.startup([(keep, "cli")])
    first = parse_rule(f"127.0.0.1:0=127.0.0.1:{echo_port}", None)
    second = parse_rule(f"tcp/127.0.0.1:0=127.0.0.1:{echo_port}")
    await run.fwd.table.apply([first], "config")
    await run.fwd.table.apply([second], "config")
    origins = [(rs.rule.text, rs.origin) for rs in run.fwd.table.rules]
    assert origins == [(keep.text, "cli"), (second.text, "config")]
    assert run.events("rule-removed")[0]["rule"] == 2
    await run.stop()


async def test_a_removed_rule_stops_listening_and_its_connection_drains(echo_port: int) -> None:
    run = Run()
    await run.fwd.startup([(parse_rule(f"0=127.0.0.1:{echo_port}"), "api")])
    port = run.port(1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"a")
    assert await reader.readexactly(1) == b"a"
    rs = run.fwd.table.rules[0]
    run.fwd.table.remove(rs)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"b")  # the open connection still works while it drains
    assert await reader.readexactly(1) == b"b"
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    for _ in range(100):
        if not run.fwd.table.rules:
            break
        await asyncio.sleep(0.01)
    assert run.fwd.table.rules == []  # forgotten once drained
    await run.stop()


async def test_loopback_clients_pass_any_allow_list(echo_port: int) -> None:
    """Loopback is this machine (issue 22): an allow list that does not name it still
    lets local clients through, on 127.0.0.1 and on ::1. Refusals are tested in
    test_decisions.py and, from a LAN address, in the lab."""
    run = Run()
    rule = parse_rule(f"0=127.0.0.1:{echo_port}", parse_networks(["198.19.0.0/24"], "t"))
    await run.fwd.startup([(rule, "cli")])
    assert await talk(run.port(1), b"local") == b"local"
    counters = run.fwd.table.rules[0].counters
    assert (counters.accepted, counters.denied, counters.rejected) == (1, 0, 0)
    assert run.events("denied") == []
    await run.stop()


async def test_a_rule_beyond_loopback_must_say_who_may_connect() -> None:
    run = Run()
    with pytest.raises(UsageError, match="say who may connect with --allow"):
        await run.fwd.startup([(parse_rule("0.0.0.0:0=127.0.0.1:9"), "cli")])
    assert run.fwd.table.rules == []


async def test_a_port_in_use_is_a_listen_error_with_its_errno_and_nothing_stays_open(
    echo_port: int,
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    run = Run()
    first = parse_rule(f"127.0.0.1:0=127.0.0.1:{echo_port}")
    second = parse_rule(f"127.0.0.1:{port}=127.0.0.1:{echo_port}")
    with pytest.raises(ListenError) as info:
        await run.fwd.startup([(first, "cli"), (second, "cli")])
    assert info.value.errno == errno.EADDRINUSE
    assert "address already in use" in info.value.message
    assert run.fwd.table.rules == []
    taken.close()


async def test_a_refused_target_ends_the_client_and_is_counted() -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    run = Run()
    await run.fwd.startup([(parse_rule(f"0=127.0.0.1:{port}"), "cli")])
    assert await ended_by_forwarder(run.port(1))
    for _ in range(100):
        if run.events("conn"):
            break
        await asyncio.sleep(0.01)
    assert run.events("conn")[0]["reason"] == "connect-refused"
    assert dict(run.fwd.table.rules[0].counters.ended) == {"connect-refused": 1}
    await run.stop()


async def test_a_udp_session_with_traffic_outlives_its_timeout_and_ends_once_idle() -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    run = Run(udp_timeout=0.4)
    rule = parse_rule(f"udp/127.0.0.1:0=127.0.0.1:{target.getsockname()[1]}")
    await run.fwd.startup([(rule, "cli")])
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    while loop.time() - start < 1.2:  # three timeouts' worth, a datagram every 0.1 s
        client.sendto(b"tick", ("127.0.0.1", run.port(1)))
        sent, last = sent + 1, loop.time()
        await asyncio.sleep(0.1)
    assert run.events("udp-session") == []
    udp = run.fwd.table.rules[0].udp
    assert udp is not None and len(udp.sessions) == 1
    for _ in range(100):
        if run.events("udp-session"):
            break
        await asyncio.sleep(0.02)
    [end] = run.events("udp-session")
    assert (end["reason"], end["datagrams_up"], end["dropped"]) == ("idle-timeout", sent, 0)
    assert loop.time() - last >= 0.4  # not before the timeout, counted from the last datagram
    await run.stop()
    client.close()
    target.close()
