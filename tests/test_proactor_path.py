"""The forwarder as it runs on Windows' proactor loop: overlapped accepts chained from
their completions, overlapped connects under the deadline, UDP read after completions.
On the stand-in proactor of tests/standin.py, with real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import wslnet
from tests.standin import LoopProactor, run_on_standin
from tests.test_server import Run, echo, ended_by_forwarder, talk
from wslnet.forward.core.accept import CompletionStrategy
from wslnet.forward.core.rules import parse_rule
from wslnet.forward.data.dial import CompletionDialer
from wslnet.forward.data.ends import End
from wslnet.forward.data.udp_port import CompletionPort

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
        assert sorted(e["up"] for e in ends)[-1] == len(payload)
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
                data, addr = await loop.sock_recvfrom(echo_sock, 70000)
                await loop.sock_sendto(echo_sock, data, addr)

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
