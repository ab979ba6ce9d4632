"""The forwarder as it runs on Windows' proactor loop: overlapped accepts chained from
their completions, overlapped connects under the deadline, UDP read after completions.
On the stand-in proactor of tests/standin.py, with real loopback sockets."""

from __future__ import annotations

import asyncio
import errno
import gc
import io
import json
import select
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

import wslnet
from tests.helpers import send_and_read_all
from tests.standin import ERROR_NETNAME_DELETED, LoopProactor, run_on_standin, win_error
from tests.test_server import Run, echo, ended_by_forwarder, talk
from wslnet.forward.core.accept import CompletionStrategy
from wslnet.forward.core.log import EventLog
from wslnet.forward.core.rules import parse_rule
from wslnet.forward.data.dial import CompletionDialer, connect_reason
from wslnet.forward.data.ends import End
from wslnet.forward.data.udp_port import CompletionPort
from wslnet.forward.run import _loop_error_logger

PACKAGE = Path(wslnet.__file__).resolve().parent


def is_ours(filename: str) -> bool:
    """Code of the wslnet package itself: not the tests beside it, whatever the checkout
    is called (`git clone ... wslnet` makes one named like the package) or the separator."""
    return Path(filename).resolve().is_relative_to(PACKAGE)


def proactor() -> LoopProactor:
    loop = asyncio.get_running_loop()
    return loop._proactor  # type: ignore[attr-defined,no-any-return]


async def wait_for_events(run: Run, name: str, count: int) -> list[dict[str, object]]:
    for _ in range(200):
        if len(run.events(name)) >= count:
            break
        await asyncio.sleep(0.01)
    return run.events(name)


def test_tcp_relays_and_half_closes_with_no_task_per_connection() -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        run = Run(engine="protocol")
        rule = parse_rule(f"0=127.0.0.1:{server.sockets[0].getsockname()[1]}")
        await run.fwd.startup([(rule, "cli")])
        assert isinstance(run.fwd.strategy, CompletionStrategy)
        port = run.port(1)
        payload = bytes(range(256)) * 1000
        ours: list[str] = []  # tasks the forwarder starts while it serves
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
            if is_ours(coro.cr_code.co_filename):
                ours.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kw)

        loop.set_task_factory(factory)
        assert await talk(port, payload) == payload
        got = await asyncio.gather(*(talk(port, b"%d" % i) for i in range(50)))
        assert got == [b"%d" % i for i in range(50)]
        assert await talk(port, b"v6", "::1") == b"v6"
        ends = await wait_for_events(run, "conn", 52)
        assert max(int(str(e["up"])) for e in ends) == len(payload)
        assert {e["reason"] for e in ends} == {"closed"} and len(ends) == 52
        assert ours == []
        loop.set_task_factory(None)
        assert proactor().accepts >= 53  # one overlapped accept per connection, chained
        await run.stop()
        assert run.fwd.active == 0
        server.close()

    run_on_standin(main())


def test_a_refused_target_and_a_removed_rule() -> None:
    async def main() -> None:
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        dead.close()
        run = Run(engine="protocol")
        await run.fwd.startup([(parse_rule(f"0=127.0.0.1:{dead_port}"), "cli")])
        port = run.port(1)
        assert await ended_by_forwarder(port)
        ends = await wait_for_events(run, "conn", 1)
        assert ends[0]["reason"] == "connect-refused"
        run.fwd.table.remove(run.fwd.table.rules[0])  # cancels the overlapped accept
        await asyncio.sleep(0.05)
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("the removed rule still listens")
        await run.stop()

    run_on_standin(main())


def test_a_silent_target_times_out_and_the_client_is_reset() -> None:
    async def main() -> None:
        run = Run(engine="protocol", connect_timeout=0.2)
        await run.fwd.startup([(parse_rule("0=127.0.0.1:9"), "cli")])
        proactor().hang_connects = True
        assert await ended_by_forwarder(run.port(1))
        ends = await wait_for_events(run, "conn", 1)
        assert ends[0]["reason"] == "connect-timeout"
        await run.stop()

    run_on_standin(main())


def test_the_dialer_tries_the_next_address_and_cancel_closes_its_socket() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        addrs = [(socket.AF_INET, dead.getsockname()), (socket.AF_INET, listening.getsockname())]
        dead.close()
        done: asyncio.Future[tuple[socket.socket | None, End | None]] = loop.create_future()
        own: set[tuple[tuple[str, int], tuple[str, int]]] = set()
        dialer = CompletionDialer(
            loop, proactor(), addrs, 5.0, lambda s, r: done.set_result((s, r)), own
        )
        dialer.start()
        sock, reason = await asyncio.wait_for(done, 5)
        assert sock is not None and reason is None
        assert sock.getpeername() == listening.getsockname() and dialer.ends in own
        sock.close()

        proactor().hang_connects = True
        hung = CompletionDialer(loop, proactor(), addrs[1:], 5.0, lambda s, r: None)
        hung.start()
        tried = hung.sock
        assert tried is not None
        hung.cancel()
        await asyncio.sleep(0)  # the socket closes after the cancellation, as on Windows
        assert tried.fileno() == -1
        listening.close()

    run_on_standin(main())


def test_udp_rules_read_through_the_completion_port() -> None:
    async def main() -> None:
        echo_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        echo_sock.bind(("127.0.0.1", 0))
        echo_sock.setblocking(False)
        loop = asyncio.get_running_loop()

        async def echo_udp() -> None:
            while True:
                data, addr = await proactor().recvfrom(echo_sock, 70000)  # 3.10: no sock_recvfrom
                await proactor().sendto(echo_sock, data, 0, addr)

        echoing = loop.create_task(echo_udp())
        run = Run(engine="protocol")
        rule = parse_rule(f"udp/127.0.0.1:0=127.0.0.1:{echo_sock.getsockname()[1]}")
        await run.fwd.startup([(rule, "cli")])
        udp = run.fwd.table.rules[0].udp
        assert udp is not None and all(isinstance(p, CompletionPort) for p in udp.ports)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.connect(("127.0.0.1", run.port(1)))
        for text in (b"one", b"", b"three"):
            await loop.sock_sendall(client, text)
            assert await asyncio.wait_for(loop.sock_recv(client, 100), 5) == text
        await run.stop()
        echoing.cancel()
        client.close()
        echo_sock.close()

    run_on_standin(main())


def test_ours_means_the_package_not_the_checkout_named_like_it() -> None:
    from wslnet.forward.core import server

    assert is_ours(server.__file__)
    assert not is_ours(__file__)  # tests/ sits beside the package, in a checkout `wslnet`
    assert not is_ours(str(PACKAGE.parent / "wslnet-tests" / "standin.py"))


class LoopErrors:
    """What the forwarder's own loop exception handler (run.py's) logs as internal-error
    lines: callbacks that raised, task exceptions never retrieved."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.log = EventLog("json", 0, self.stream)
        asyncio.get_running_loop().set_exception_handler(_loop_error_logger(self.log))

    @property
    def seen(self) -> list[str]:
        assert self.log.flush()
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [str(e.get("msg")) for e in lines if e["event"] == "internal-error"]


async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # says nothing; holds the connection until the peer ends it
    writer.close()


async def until(done: Any, what: str) -> None:
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_an_ipv6_target_connects_through_connectex() -> None:
    """ConnectEx reads a 2-tuple as IPv4: the target's sockaddr must stay a 4-tuple."""

    async def main() -> None:
        server = await asyncio.start_server(echo, "::1", 0)
        run = Run(engine="protocol")
        await run.fwd.startup(
            [(parse_rule(f"0=[::1]:{server.sockets[0].getsockname()[1]}"), "cli")]
        )
        assert await talk(run.port(1), b"over v6") == b"over v6"
        ends = await wait_for_events(run, "conn", 1)
        assert ends[0]["reason"] == "closed" and str(ends[0]["target"]).startswith("[::1]:")
        await run.stop()
        server.close()

    run_on_standin(main())


def test_an_abort_resets_the_client_with_no_end_of_file_first() -> None:
    async def main() -> None:
        errors = LoopErrors()
        silent = socket.socket()  # a target that never answers (its kernel accepts)
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        run = Run(engine="protocol", drain=30)
        await run.fwd.startup([(parse_rule(f"0=127.0.0.1:{silent.getsockname()[1]}"), "cli")])
        client = socket.create_connection(("127.0.0.1", run.port(1)), timeout=5)
        client.sendall(b"hello")
        rs = run.fwd.table.rules[0]
        await until(lambda: any(c.relay for c in rs.active), "relaying")
        await asyncio.sleep(0.05)  # both transports made
        run.fwd.request_stop()
        run.fwd.request_stop()  # the second signal aborts what is open

        def first_read() -> bytes | None:
            try:
                return client.recv(100)
            except ConnectionResetError:
                return None

        got = await asyncio.to_thread(first_read)
        assert got is None, f"the client read {got!r} before any reset"
        await run.fwd.shutdown()
        assert [e["reason"] for e in run.events("conn")] == ["shutdown"]
        assert errors.seen == []
        client.close()
        silent.close()

    run_on_standin(main())


def test_a_target_that_resets_ends_its_connection_with_no_internal_error() -> None:
    async def main() -> None:
        errors = LoopErrors()

        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        listening.listen()

        def resets() -> None:  # plain sockets: asyncio's own would shut down first here
            conn, _ = listening.accept()
            conn.recv(5)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

        resetting = asyncio.ensure_future(asyncio.to_thread(resets))
        run = Run(engine="protocol")
        target = f"0=127.0.0.1:{listening.getsockname()[1]}"
        await run.fwd.startup([(parse_rule(target), "cli")])
        assert await ended_by_forwarder_after(run.port(1), b"hello")
        await resetting
        ends = await wait_for_events(run, "conn", 1)
        assert ends[0]["reason"] == "target-reset"
        await asyncio.sleep(0.05)
        assert errors.seen == []
        await run.stop()
        listening.close()

    run_on_standin(main())


async def ended_by_forwarder_after(port: int, data: bytes) -> bool:
    """Whether the forwarder ends a connection once `data` went through (a plain socket:
    an asyncio client here would shut down as the proactor does, and raise)."""

    def attempt() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(data)
            try:
                return client.recv(100) == b""
            except ConnectionResetError:
                return True

    return await asyncio.to_thread(attempt)


async def plain_talk(port: int, data: bytes) -> bytes:
    """talk() over a plain socket (see ended_by_forwarder_after)."""

    return await asyncio.to_thread(send_and_read_all, port, data)


@pytest.mark.parametrize("early", [False, True], ids=["after-its-first-step", "before-it"])
def test_a_client_gone_before_its_accept_is_no_error_and_accepting_goes_on(early: bool) -> None:
    """WinError 64 (ERROR_NETNAME_DELETED) from AcceptEx: one client that left, whether
    the failure comes after accept_coro's first step or before it."""

    async def main() -> None:
        errors = LoopErrors()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        run = Run(engine="protocol")
        rule = parse_rule(f"0=127.0.0.1:{server.sockets[0].getsockname()[1]}")
        proactor().accept_fails_early = early
        proactor().accept_errors.append(win_error(errno.EINVAL, ERROR_NETNAME_DELETED))
        await run.fwd.startup([(rule, "cli")])
        for _ in range(3):
            await asyncio.sleep(0)
        listeners = len(run.fwd.table.rules[0].listeners)
        assert proactor().accepts == listeners + 1, "the next accept waited"
        assert await plain_talk(run.port(1), b"next one") == b"next one"
        gc.collect()
        await asyncio.sleep(0)
        assert errors.seen == []  # no "Task exception was never retrieved"
        assert run.events("accept-failed") == []  # at debug only
        await run.stop()
        server.close()

    run_on_standin(main())


@pytest.mark.parametrize("no_peer", [True, False], ids=["3.11.9+", "older"])
def test_a_udp_rule_outlives_a_vanished_client_and_a_vanished_target(no_peer: bool) -> None:
    """Windows' port unreachable, both ways: on the listening socket (a reply to a client
    that left) no session and nothing forwarded; on a session's (the target left) the
    session ends."""

    async def main() -> None:
        target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target.bind(("127.0.0.1", 0))
        target.setblocking(False)
        run = Run(engine="protocol")
        rule = parse_rule(f"udp/127.0.0.1:0=127.0.0.1:{target.getsockname()[1]}")
        await run.fwd.startup([(rule, "cli")])
        udp = run.fwd.table.rules[0].udp
        assert udp is not None
        to = ("127.0.0.1", run.port(1))
        gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gone.sendto(b"ask", to)
        await until(lambda: _readable(target), "the target heard the client")
        _, back = target.recvfrom(100)
        gone.close()  # the client leaves before the reply
        target.sendto(b"reply", back)
        await asyncio.sleep(0.1)
        assert list(udp.sessions) == [back_to := next(iter(udp.sessions))]
        assert isinstance(back_to, tuple)  # the vanished client's session only; none for None
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.sendto(b"still listening?", to)
        await until(lambda: _readable(target), "the rule still forwards")
        assert target.recvfrom(100)[0] == b"still listening?"
        assert all(s.client is not None for s in udp.sessions.values())
        target.close()  # now the target leaves
        client.sendto(b"anyone?", to)
        await until(lambda: run.events("udp-session"), "a session ended")
        ended = run.events("udp-session")
        assert ended[0]["reason"] == "target-unreachable (ICMP port unreachable)"
        assert run.events("denied") == []
        await run.stop()
        client.close()

    run_on_standin(main(), recvfrom_no_peer=no_peer)


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


@pytest.mark.parametrize(
    ("winerror", "kind"),
    [
        (1231, "connect-unreachable"),
        (1232, "connect-unreachable"),
        (121, "connect-timeout"),
        (1225, "connect-refused"),
        (10060, "connect-error"),
    ],
)
def test_connectex_failures_are_read_by_their_win32_code(winerror: int, kind: str) -> None:
    """GetOverlappedResult's codes reach Python as OSError(EINVAL) with `winerror` set
    (PC/errmap.h maps none of these): the end is read from the code."""
    assert connect_reason(win_error(errno.EINVAL, winerror)).kind == kind


def test_an_accept_that_fails_at_once_for_a_gone_client_is_posted_again_at_once() -> None:
    """AcceptEx raising WSAECONNRESET itself (overlapped.c: the error is raised, not
    completed): one client's reset must not pause the listener."""

    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        run = Run(engine="protocol")
        rule = parse_rule(f"0=127.0.0.1:{server.sockets[0].getsockname()[1]}")
        await run.fwd.startup([(rule, "cli")])
        real = proactor().accept
        gone = [ConnectionResetError(errno.ECONNRESET, "reset", None, 10054)]

        def accept(listener: socket.socket) -> asyncio.Future[Any]:
            if gone:
                raise gone.pop()
            return real(listener)

        proactor().accept = accept  # type: ignore[method-assign]
        strategy = run.fwd.strategy
        assert isinstance(strategy, CompletionStrategy)
        lst = run.fwd.table.rules[0].listeners[0]
        strategy.unwatch(lst)
        strategy.watch(lst)
        before = proactor().accepts
        await asyncio.sleep(0.02)  # well under the 100 ms pause after other errors
        assert proactor().accepts == before + 1, "accepting again at once"
        assert await plain_talk(run.port(1), b"next") == b"next"
        await run.stop()
        server.close()

    run_on_standin(main())
