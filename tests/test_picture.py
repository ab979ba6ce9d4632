"""The picture tells the same story as the findings below it (in-process)."""

from __future__ import annotations

from wslnet.check.model import Finding, fail, ok
from wslnet.check.picture import drawable, picture
from wslnet.check.verdicts.listen import judge_all, listeners
from wslnet.facts.procnet import SocketEntry
from wslnet.where import Environment

NAT = Environment("wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": ["198.18.5.20"]})
MIRRORED = Environment("wsl2", "mirrored", "", "Ubuntu", "", "wsl2", None, False)
CONTAINER = Environment("container", None, "", None, "", "other", "docker", False)
LINUX = Environment("linux", None, "", None, "", "other", None, False)
ALL = {"environment.kind", "listeners.bind-address", "host.address", "host.reach", "raw.host"}


def test_the_picture_is_drawn_only_by_a_run_that_gathers_what_it_shows() -> None:
    assert drawable(NAT, ALL)
    assert not drawable(NAT, {"listeners.bind-address"})  # the host would be "?"
    assert not drawable(NAT, {"host.reach", "host.address"})  # no listeners looked at
    assert drawable(MIRRORED, {"listeners.bind-address"})  # no host address drawn there
    assert not drawable(Environment("windows", None, "", None, "", "other", None, False), ALL)


def _host(address: str = "198.18.0.1") -> Finding:
    f = ok(f"Windows host is {address}", evidence={"address": address})
    f.id = "host.address"
    return f


def test_the_host_link_is_drawn_by_its_verdict() -> None:
    gone = fail("198.18.0.1 does not answer ARP on eth0")
    gone.id = "raw.host"
    head = picture(NAT, [_host(), gone], 120).splitlines()[0]
    assert head == (
        "Windows host 198.18.0.1 ═╳═ NAT ═╳═ WSL VM 198.18.5.20 (Ubuntu): "
        "the host does not answer, fix below"
    )
    well = picture(NAT, [_host()], 120, ascii=True).splitlines()[0]
    assert well == "Windows host 198.18.0.1 === NAT === WSL VM 198.18.5.20 (Ubuntu)"


def _entry(address: str, port: int) -> SocketEntry:
    return SocketEntry("tcp", "ipv4", address, port, "0.0.0.0", 0, 10, 0, 7)


def test_in_a_plain_container_the_picture_check_and_listeners_tell_one_story() -> None:
    found = judge_all([_entry("0.0.0.0", 8000)], None, True, [], container=True)
    assert found[0].windows_localhost == "if-published"  # what `wslnet listeners` says
    findings = listeners(found, [], None, None)
    for f in findings:
        f.id = "listeners.bind-address"
    assert [f.title for f in findings] == ["tcp 0.0.0.0:8000: Windows localhost if-published"]
    assert picture(CONTAINER, findings, 80, ascii=True).splitlines() == [
        "container: not WSL",
        "  localhost:8000 -> docker -p -> 0.0.0.0:8000 if published",
    ]


def test_outside_wsl_the_picture_counts_the_sockets_the_finding_counts() -> None:
    found = judge_all([_entry("0.0.0.0", 8000)], None, True, [])
    (finding,) = listeners(found, [], None, None)
    finding.id = "listeners.bind-address"
    assert finding.title.startswith("1 listening socket (not in WSL")
    assert picture(LINUX, [finding], 80).splitlines() == [
        "linux: not WSL",
        "  1 listening socket, not for Windows",
    ]


def _udp(address: str, port: int, inode: int) -> SocketEntry:
    return SocketEntry("udp", "ipv4", address, port, "0.0.0.0", 0, 7, 0, inode)


def test_wslnets_own_sockets_are_infrastructure_and_credited_to_their_rule() -> None:
    """Issue 22 item 4: a forwarder's UDP listener is no problem to fix, and a forwarder
    socket on a user's port names the rule, not wslnet as the port's owner."""
    user = SocketEntry("tcp", "ipv4", "198.18.5.20", 8000, "0.0.0.0", 0, 10, 0, 1)
    fwd = SocketEntry("tcp", "ipv4", "127.0.0.1", 8000, "0.0.0.0", 0, 10, 0, 2)
    owners = {1: (812, "node"), 2: (900, "wslnet"), 3: (900, "wslnet")}
    forwards = {("tcp", "127.0.0.1", 8000): (1, 900), ("udp", "127.0.0.1", 5354): (2, 900)}
    found = judge_all(
        [user, fwd, _udp("127.0.0.1", 5354, 3)], "nat", True, ["198.18.5.20"],
        owners=owners, forwards=forwards,
    )  # fmt: skip
    findings = listeners(found, [], None, "nat")
    by_title = {f.title: f for f in findings}
    own = by_title["udp 127.0.0.1:5354: wslnet forward rule 2, wslnet's own"]
    assert (own.status, own.fix) == ("info", None)
    served = by_title[
        "tcp 198.18.5.20:8000 (node, pid 812), forwarded by wslnet rule 1: Windows localhost yes"
    ]
    assert (served.status, served.fix) == ("ok", None)
    for f in findings:
        f.id = "listeners.bind-address"
    lines = picture(NAT, [_host(), *findings], 100, ascii=True).splitlines()
    assert "  . udp 127.0.0.1:5354 (wslnet): wslnet forward's own" in lines
    assert not any("fix below" in line for line in lines)
