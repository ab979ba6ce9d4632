"""Hostile input, in process: text from outside never forges a log line or reaches a
terminal as an escape, a flood of distinct keys is limited per kind, a log file whose
rotation cannot rename keeps every line, and a host name ending in a newline is refused."""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import json
import sys
from pathlib import Path

import pytest

from wslnet.errors import UsageError
from wslnet.forward.control.gate import Admit, Limits, Refuse, Slot, decide, is_local
from wslnet.forward.control.requests import forward_request
from wslnet.forward.core.log import EventLog, RotatingFile
from wslnet.forward.core.rules import parse_rule

FORGED = "/x\n2026-01-01T00:00:00\tinfo\tlistening - \x1b[2Jowned"


def logged(fmt: str, **fields: object) -> list[str]:
    out = io.StringIO()
    log = EventLog("json" if fmt == "json" else "text", 0, stream=out)
    log("warning", "api-error", FORGED, **fields)
    log.close()
    return out.getvalue().splitlines()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_decoded_request_path_cannot_forge_a_log_line(fmt: str) -> None:
    (line,) = logged(fmt, path=FORGED, status=401)
    assert "\x1b" not in line and "\t" not in line
    if fmt == "json":
        doc = json.loads(line)
        assert (
            doc["path"]
            == doc["msg"]
            == "/x\\x0a2026-01-01T00:00:00\\x09info\\x09listening - \\x1b[2Jowned"
        )
    else:
        assert line.endswith(
            'api-error path="/x\\n2026-01-01T00:00:00\\tinfo\\tlistening - \\u001b[2Jowned"'
            " status=401 - /x\\x0a2026-01-01T00:00:00\\x09info\\x09listening - \\x1b[2Jowned"
        )


def test_a_flood_of_distinct_keys_is_limited_per_kind() -> None:
    out = io.StringIO()
    log = EventLog("json", 0, stream=out)
    for n in range(3_000):  # as many distinct paths as a client cares to send
        log.limited(f"api:401:/p{n}", "warning", "api-error", path=f"/p{n}")
    log.close()
    assert len(out.getvalue().splitlines()) <= 257


def test_a_log_whose_rotation_cannot_rename_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "forward.log"
    (tmp_path / "forward.log.1").mkdir()  # rename onto a folder fails, as a locked file would
    (tmp_path / "forward.log.1" / "x").touch()
    told: list[str] = []
    log = RotatingFile(path, told.append, max_bytes=100, keep=1)
    for n in range(50):
        log.write(f"line {n:04}\n")
        log.flush()
    assert path.read_text().splitlines() == [f"line {n:04}" for n in range(50)]
    (line,) = told  # the reason is the system's words: "Is a directory" on Linux
    assert line.startswith(f"cannot rotate {path} (") and line.endswith("): writing on to it")


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no FIFOs in its file system")
def test_a_fifo_as_log_file_is_refused_at_start_and_never_waits_for_a_reader(
    tmp_path: Path,
) -> None:
    import os

    if sys.platform == "win32":  # the lab (and FIFOs) are Linux's
        raise AssertionError("Linux only")
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:
        EventLog("text", 0, log_file=fifo)
    assert caught.value.message == (
        f"--log-file {fifo} is a pipe: give a file, or leave --log-file out to log to stderr"
    )
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("rule", ["8080=evil-name\n:80", "8080=wsl@x\n:80", "8080=host.\n:1"])
def test_a_host_name_ending_in_a_newline_is_refused(rule: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_rule(rule)
    assert "is neither an IP address nor a host name" in caught.value.message


def test_an_api_rule_beyond_loopback_with_an_empty_allow_list_is_refused() -> None:
    body = json.dumps({"listen": "0.0.0.0:8080", "target": "127.0.0.1:9", "allow": []})
    with pytest.raises(UsageError) as caught:  # the API answers 400 with this message
        forward_request(body.encode(), "application/json")
    assert caught.value.message == (
        "rule 'tcp/0.0.0.0:8080=127.0.0.1:9' listens on 0.0.0.0 but 'allow' is empty, so "
        "nobody could connect: list the networks that may"
    )
    loopback = json.dumps({"listen": "127.0.0.1:8080", "target": "127.0.0.1:9", "allow": []})
    assert forward_request(loopback.encode(), "application/json").allow == ()


# -- the API's connection gate: a full table never locks the local user out --
def slots(n: int, host: str, start: int = 0, asked: bool = False, busy: bool = False) -> list[Slot]:
    return [Slot(k, host, is_local(host), asked, busy, k) for k in range(start, start + n)]


def test_a_table_full_of_silent_loopback_connections_makes_room_for_the_local_user() -> None:
    table = slots(10, "127.0.0.1", asked=True) + slots(54, "127.0.0.1", start=10)
    # The oldest that never asked goes first, before older ones that asked something.
    assert decide(tuple(table), ("127.0.0.1", 5000), Limits()) == Admit(evict=10)


def test_a_full_table_of_busy_connections_refuses_the_newcomer() -> None:
    table = tuple(slots(64, "127.0.0.1", busy=True))
    assert decide(table, ("127.0.0.1", 5000), Limits()) == Refuse("full")


def test_remote_clients_never_take_the_loopback_slots_nor_more_than_their_share() -> None:
    one = tuple(slots(8, "198.19.0.50"))  # one address at its cap: its own oldest goes
    assert decide(one, ("198.19.0.50", 1), Limits()) == Admit(evict=0)
    assert decide(one, ("198.19.0.51", 1), Limits()) == Admit()
    assert decide(tuple(slots(8, "198.19.0.50", busy=True)), ("198.19.0.50", 1), Limits()) == (
        Refuse("per-client")
    )
    remote = [s for n in range(6) for s in slots(8, f"198.19.0.{60 + n}", start=8 * n)]
    local = slots(4, "::1", start=100)
    table = tuple(local + remote)  # 48 remote: the remote share is full
    assert decide(table, ("198.19.0.70", 1), Limits()) == Admit(evict=0)  # a remote one
    assert decide(table, ("::ffff:127.0.0.1", 1), Limits()) == Admit()  # a reserved slot
    busy_remote = tuple(local + [dataclasses.replace(s, busy=True) for s in remote])
    assert decide(busy_remote, ("198.19.0.70", 1), Limits()) == Refuse("full")


def test_the_api_gate_follows_allow_and_always_admits_loopback() -> None:
    limits = Limits(allow=(ipaddress.ip_network("198.19.0.50/32"),))
    assert decide((), ("198.19.0.50", 1), limits) == Admit()
    assert decide((), ("198.19.0.51", 1), limits) == Refuse("not-allowed")
    assert decide((), ("127.0.0.1", 1), limits) == Admit()
    assert decide((), ("::1", 1, 0, 0), limits) == Admit()
    assert decide((), None, limits) == Refuse("no-address")
