"""The UDP port under the forwarder's UDP rules, both ways of waiting, on real sockets.

The completion port is Windows' way (IocpProactor), here on the stand-in proactor of
tests/standin.py: its logic (drain after each completion, one read at a time, go on
after an error) runs on real sockets."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.standin import LoopProactor, report_icmp, run_on_standin
from wslnet.forward.data import udp_port
from wslnet.forward.data.loops import proactor_of
from wslnet.forward.data.sockopts import big_buffers
from wslnet.forward.data.udp_port import CompletionPort, DatagramPort, ReadinessPort, peer_gone


class Heard:
    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, Any]] = []
        self.errors: list[OSError] = []
        self.arrived = asyncio.Event()

    def datagram(self, data: bytes, addr: Any) -> None:
        self.datagrams.append((data, addr))
        self.arrived.set()

    def error(self, exc: OSError) -> None:
        self.errors.append(exc)
        self.arrived.set()

    async def until(self, done: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not done():
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(wait(), timeout)


Opener = Callable[[socket.socket, Heard, bool], DatagramPort]


def readiness(sock: socket.socket, heard: Heard, connected: bool) -> DatagramPort:
    loop = asyncio.get_running_loop()
    if proactor_of(loop) is not None:
        sock.close()
        pytest.skip("Windows' proactor loop cannot watch descriptors: no readiness port there")
    return ReadinessPort(loop, sock, heard.datagram, heard.error, connected)


def completion(sock: socket.socket, heard: Heard, connected: bool) -> DatagramPort:
    """On Windows' proactor loop its own IocpProactor; elsewhere the stand-in."""
    loop = asyncio.get_running_loop()
    proactor = proactor_of(loop) or LoopProactor(loop)
    return CompletionPort(loop, sock, heard.datagram, heard.error, connected, proactor)


OPENERS = [pytest.param(readiness, id="readiness"), pytest.param(completion, id="completion")]


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.parametrize("opener", OPENERS)
async def test_a_burst_from_two_senders_arrives_whole_in_order_with_its_senders(
    opener: Opener,
) -> None:
    heard = Heard()
    sock = udp_socket()
    big_buffers(sock)  # the burst is sent before the loop reads any of it
    port = opener(sock, heard, False)
    port.start()
    to = port.sock.getsockname()
    a, b = udp_socket(), udp_socket()
    sizes = [i % 1500 for i in range(300)] + [0, 65507]  # an empty datagram is one too
    for i, n in enumerate(sizes):
        (a if i % 2 else b).sendto(bytes([i % 256]) * n, to)
    await heard.until(lambda: len(heard.datagrams) == len(sizes))
    assert [len(d) for d, _ in heard.datagrams] == sizes
    assert [d[:1] for d, _ in heard.datagrams if d] == [
        bytes([i % 256]) for i, n in enumerate(sizes) if n
    ]
    senders = [addr for _, addr in heard.datagrams]
    assert senders[0::2] == [b.getsockname()] * 151 and senders[1::2] == [a.getsockname()] * 151
    port.close()
    a.close()
    b.close()


@pytest.mark.parametrize("opener", OPENERS)
async def test_replies_leave_through_the_port_to_the_address_given(opener: Opener) -> None:
    heard = Heard()
    port = opener(udp_socket(), heard, False)
    client = udp_socket()
    client.settimeout(5)
    for text in (b"one", b"", b"three"):
        port.send(text, client.getsockname())
    got = [await asyncio.to_thread(client.recvfrom, 100) for _ in range(3)]
    assert got == [(t, port.sock.getsockname()) for t in (b"one", b"", b"three")]
    port.close()
    client.close()


@pytest.mark.parametrize("opener", OPENERS)
async def test_a_connected_port_hears_the_targets_port_unreachable(opener: Opener) -> None:
    dead = udp_socket()
    addr = dead.getsockname()
    dead.close()
    heard = Heard()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(addr)
    port = opener(sock, heard, True)
    port.start()
    port.send(b"anyone?")
    await heard.until(lambda: bool(heard.errors))
    assert peer_gone(heard.errors[0]) and heard.datagrams == []
    port.close()


def test_the_completion_port_reads_on_after_an_error() -> None:
    run_on_standin(reads_on_after_an_error())


async def reads_on_after_an_error() -> None:
    """Some Pythons' proactor transport stops reading a UDP socket after an error."""
    loop = asyncio.get_running_loop()
    heard = Heard()
    proactor = proactor_of(loop)
    assert isinstance(proactor, LoopProactor)
    proactor.fail_next = [ConnectionResetError(10054, "reset"), OSError(10040, "too long")]
    port = CompletionPort(loop, udp_socket(), heard.datagram, heard.error, False, proactor)
    port.start()
    sender = udp_socket()
    sender.sendto(b"still here", port.sock.getsockname())
    await heard.until(lambda: bool(heard.datagrams))
    assert [e.errno for e in heard.errors] == [10054, 10040]
    assert heard.datagrams == [(b"still here", sender.getsockname())]
    port.close()
    sender.close()


def test_the_completion_port_drains_between_receives() -> None:
    run_on_standin(drains_between_receives())


async def drains_between_receives() -> None:
    loop = asyncio.get_running_loop()
    heard = Heard()
    proactor = proactor_of(loop)
    assert isinstance(proactor, LoopProactor)
    sock = udp_socket()
    sender = udp_socket()
    for i in range(50):  # waiting before the first receive is posted
        sender.sendto(bytes([i]), sock.getsockname())
    port = CompletionPort(loop, sock, heard.datagram, heard.error, False, proactor)
    port.start()
    await heard.until(lambda: len(heard.datagrams) == 50)
    assert [d for d, _ in heard.datagrams] == [bytes([i]) for i in range(50)]
    assert proactor.receives == 2  # one completion, the rest drained, the next one posted
    port.close()
    sender.close()


@pytest.mark.parametrize("opener", OPENERS)
async def test_a_full_socket_queues_in_order_and_drops_past_the_limit(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Unix datagram pair blocks its sender while the receiver's queue is full, which is
    the one way to fill a datagram socket's send path on a real socket."""
    if sys.platform == "win32":
        pytest.skip("Windows refuses AF_UNIX datagram pairs")
    monkeypatch.setattr(udp_port, "SEND_QUEUE", 100 * 1000)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    heard = Heard()
    port = opener(ours, heard, True)
    sent = [i.to_bytes(4, "big") * 250 for i in range(1000)]  # 1000 bytes each
    for data in sent:
        port.send(data)
    assert port.queue, "the receiver's queue never filled"
    assert port.dropped > 0 and port.queued <= 100 * 1000
    kept = len(sent) - port.dropped
    theirs.setblocking(False)
    got: list[bytes] = []
    while len(got) < kept:
        try:
            got.append(theirs.recv(2000))
        except BlockingIOError:
            await asyncio.sleep(0.01)
    assert got == sent[:kept]  # nothing reordered; the drops are the newest
    await asyncio.sleep(0.05)
    assert not port.queue and port.queued == 0
    port.close()
    theirs.close()


@pytest.mark.parametrize("opener", OPENERS)
async def test_close_stops_delivery_and_closes_the_socket_once(opener: Opener) -> None:
    heard = Heard()
    port = opener(udp_socket(), heard, False)
    port.start()
    to = port.sock.getsockname()
    port.close()
    port.close()
    sender = udp_socket()
    sender.sendto(b"late", to)
    await asyncio.sleep(0.1)
    assert heard.datagrams == [] and heard.errors == []
    assert port.sock.fileno() == -1
    port.send(b"after close")  # ignored, not raised
    sender.close()


async def test_the_readiness_port_reads_a_waiting_burst_in_one_wake_up() -> None:
    loop = asyncio.get_running_loop()
    heard = Heard()
    wake_ups = []

    class Counted(ReadinessPort):
        def drain(self) -> None:
            wake_ups.append(len(heard.datagrams))
            super().drain()

    sock, sender = udp_socket(), udp_socket()
    for i in range(50):
        sender.sendto(bytes([i]), sock.getsockname())
    port = Counted(loop, sock, heard.datagram, heard.error, False)
    port.start()
    await heard.until(lambda: len(heard.datagrams) == 50)
    assert wake_ups == [0]
    port.close()
    sender.close()


@pytest.mark.parametrize(
    ("when", "no_peer"),
    [("before-the-receive", True), ("while-it-waits", True), ("while-it-waits", False)],
    ids=["before-the-receive", "while-it-waits-3.11.9+", "while-it-waits-older"],
)
def test_a_reply_to_a_vanished_client_leaves_the_port_listening(when: str, no_peer: bool) -> None:
    """Windows' ICMP port unreachable on a listening socket: raised at once by the next
    WSARecvFrom when it came first (gh-127057); from the one waiting, (b'', None) on
    3.11.9+ (gh-91227) or WinError 1234 before. None is a datagram; the port reads on."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        heard = Heard()
        proactor = proactor_of(loop)
        assert proactor is not None
        port = CompletionPort(loop, udp_socket(), heard.datagram, heard.error, False, proactor)
        report_icmp(port.sock)  # as Windows' sockets do from the start
        gone = udp_socket()
        gone_addr = gone.getsockname()
        gone.close()
        if when == "while-it-waits":
            port.start()
        port.send(b"reply", gone_addr)
        await asyncio.sleep(0.1)  # the ICMP comes back
        if when == "before-the-receive":
            port.start()
        await heard.until(lambda: bool(heard.errors))
        sender = udp_socket()
        sender.sendto(b"still here", port.sock.getsockname())
        await heard.until(lambda: bool(heard.datagrams))
        assert heard.datagrams == [(b"still here", sender.getsockname())]
        assert all(peer_gone(e) for e in heard.errors)
        port.close()
        sender.close()

    run_on_standin(main(), recvfrom_no_peer=no_peer)
