"""Packet-level probes (scapy; imported here only, and only when a probe runs).

They answer what a connect() cannot: whether a firewall drops the packets, nothing
listens, the host is gone, or large packets vanish on the path (the "ssh works, git clone
hangs" of WSL behind a VPN, shared wsl-networking.md section 7). Each probe sends a
bounded number of packets, only to the address being diagnosed, and needs root or
CAP_NET_RAW.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SynState = Literal["open", "closed", "filtered", "unreachable"]
UNREACH_CODES = {
    0: "network",
    1: "host",
    2: "protocol",
    3: "port",
    4: "fragmentation-needed",
    9: "admin-prohibited",
    10: "admin-prohibited",
    13: "admin-prohibited",
}
MIN_MTU = 576  # every IPv4 path carries this much


@dataclass
class SynResult:
    host: str
    port: int
    state: SynState
    rtt: float | None
    icmp: str | None = None  # the ICMP unreachable code, by name

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class EchoResult:
    host: str
    answered: bool
    rtt: float | None
    icmp: str | None = None


@dataclass
class ArpResult:
    address: str
    interface: str | None
    mac: str | None
    rtt: float | None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


MtuMethod = Literal[
    "full size got through", "icmp frag-needed", "size sweep", "no answer", "no route"
]
MAX_SWEPT_MTU = 9000


@dataclass
class MtuResult:
    host: str
    interface: str
    interface_mtu: int
    path_mtu: int | None
    method: MtuMethod  # how it was found
    probes: int
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def _scapy() -> Any:
    """The scapy pieces the probes use: one import, on first use."""
    from scapy import sendrecv
    from scapy.config import conf
    from scapy.layers import inet, l2

    conf.verb = 0
    return sendrecv, inet, l2, conf


def _rtt(sent: Any, answer: Any) -> float:
    return round(float(answer.time - sent.sent_time), 6)


def _send_one(pkt: Any, timeout: float) -> tuple[Any, Any]:
    sendrecv, *_ = _scapy()
    answered, _ = sendrecv.sr(pkt, timeout=timeout, verbose=0)
    if not answered:
        return pkt, None
    sent, answer = answered[0]
    return sent, answer


def syn(host: str, port: int, timeout: float = 1.0) -> SynResult:
    """One SYN: SYN-ACK is open (the kernel resets it: no socket owns our port), RST is
    closed, ICMP unreachable says why, silence is filtered."""
    _, inet, _, _ = _scapy()
    sport = random.randint(40000, 60000)
    pkt = inet.IP(dst=host) / inet.TCP(sport=sport, dport=port, flags="S",
                                      seq=random.getrandbits(32))  # fmt: skip
    sent, ans = _send_one(pkt, timeout)
    if ans is None:
        return SynResult(host, port, "filtered", None)
    rtt = _rtt(sent, ans)
    if ans.haslayer(inet.TCP):
        flags = int(ans[inet.TCP].flags)
        if flags & 0x12 == 0x12:
            return SynResult(host, port, "open", rtt)
        if flags & 0x04:
            return SynResult(host, port, "closed", rtt)
    if ans.haslayer(inet.ICMP) and int(ans[inet.ICMP].type) == 3:
        code = int(ans[inet.ICMP].code)
        return SynResult(host, port, "unreachable", rtt, UNREACH_CODES.get(code, f"code {code}"))
    return SynResult(host, port, "filtered", rtt)


def echo(host: str, timeout: float = 1.0, size: int = 0, df: bool = False) -> EchoResult:
    _, inet, _, _ = _scapy()
    ident = random.getrandbits(16)
    pkt = inet.IP(dst=host, flags="DF" if df else 0) / inet.ICMP(id=ident, seq=1) / (b"\0" * size)
    sent, ans = _send_one(pkt, timeout)
    if ans is None:
        return EchoResult(host, False, None)
    icmp = ans[inet.ICMP] if ans.haslayer(inet.ICMP) else None
    if icmp is not None and int(icmp.type) == 0:
        return EchoResult(host, True, _rtt(sent, ans))
    if icmp is not None and int(icmp.type) == 3:
        code = int(icmp.code)
        name = UNREACH_CODES.get(code, f"code {code}")
        if code == 4:
            name = f"fragmentation-needed mtu={int(icmp.nexthopmtu or 0)}"
        return EchoResult(host, False, _rtt(sent, ans), name)
    return EchoResult(host, False, None)


def arp(address: str, timeout: float = 1.0) -> ArpResult:
    """Who-has for an address on a directly attached network (the default gateway)."""
    sendrecv, _, l2, conf = _scapy()
    iface = conf.route.route(address)[0]
    pkt = l2.Ether(dst="ff:ff:ff:ff:ff:ff") / l2.ARP(pdst=address)
    answered, _ = sendrecv.srp(pkt, iface=iface, timeout=timeout, verbose=0)
    if not answered:
        return ArpResult(address, str(iface), None, None)
    sent, ans = answered[0]
    return ArpResult(address, str(iface), str(ans[l2.ARP].hwsrc), _rtt(sent, ans))


def interface_mtu(host: str) -> tuple[str, int]:
    from wslnet import system

    *_, conf = _scapy()
    iface = str(conf.route.route(host)[0])
    return iface, system.interface_mtu(iface) or 1500


def _answered_sizes(host: str, sizes: list[int], timeout: float) -> set[int]:
    """Sends one DF echo of each total size at once; the sizes that got a reply."""
    sendrecv, inet, _, _ = _scapy()
    ident = random.getrandbits(16)
    pkts = [
        inet.IP(dst=host, flags="DF") / inet.ICMP(id=ident, seq=i) / (b"\0" * (size - 28))
        for i, size in enumerate(sizes)
    ]
    answered, _ = sendrecv.sr(pkts, timeout=timeout, verbose=0)
    got = set()
    for sent, ans in answered:
        if ans.haslayer(inet.ICMP) and int(ans[inet.ICMP].type) == 0:
            got.add(len(sent))
    return got


def path_mtu(host: str, timeout: float = 0.3) -> MtuResult:
    """The largest IPv4 packet that reaches `host` with DF set: an echo of the interface's
    MTU first; then what an ICMP frag-needed says; else (ICMP filtered on the way) two
    rounds of echoes of many sizes at once, coarse then fine: at most ~65 packets."""
    from wslnet import system
    from wslnet.facts import route

    routes = system.routes()
    if route.route_for(routes, host) is None:
        return MtuResult(host, "-", 0, None, "no route", 0, [f"no route to {host} from here"])
    iface, mtu = interface_mtu(host)
    mtu = min(mtu, MAX_SWEPT_MTU)  # a jumbo or loopback MTU: sweep what paths can carry
    notes: list[str] = []
    first = echo(host, timeout, size=mtu - 28, df=True)
    probes = 1
    if first.answered:
        return MtuResult(host, iface, mtu, mtu, "full size got through", probes)
    if first.icmp and first.icmp.startswith("fragmentation-needed"):
        hinted = int(first.icmp.rsplit("=", 1)[1])
        probes += 1
        if MIN_MTU <= hinted < mtu and echo(host, timeout, size=hinted - 28, df=True).answered:
            return MtuResult(host, iface, mtu, hinted, "icmp frag-needed", probes)
        notes.append(f"frag-needed said {hinted}, which did not get through")
    step = 32
    coarse = list(range(MIN_MTU, mtu, step))
    got = _answered_sizes(host, coarse, timeout)
    probes += len(coarse)
    if not got:
        notes.append("no echo reply even at the minimum size: ICMP echo is blocked")
        return MtuResult(host, iface, mtu, None, "no answer", probes, notes)
    low = max(got)
    fine = list(range(low + 1, min(low + step, mtu)))
    probes += len(fine)
    got_fine = _answered_sizes(host, fine, timeout) if fine else set()
    return MtuResult(host, iface, mtu, max(got_fine | {low}), "size sweep", probes, notes)
