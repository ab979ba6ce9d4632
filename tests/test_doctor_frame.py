"""The doctor's frame in process: the runner's skip, crash and timeout paths, the check
ids it stamps, and both renderers."""

from __future__ import annotations

import asyncio
import json

import pytest

from wslnet.check import render, runner
from wslnet.check.context import Context, Options
from wslnet.check.model import Check, Finding, Fix, always, fail, ok
from wslnet.errors import UsageError
from wslnet.where import Environment

ENV = Environment("linux", None, "", "Debian", "6.1.0", "other", None, False)


def ctx() -> Context:
    return Context(ENV, Options())


def declared(id: str, func: object, applies: object = always, timeout: float = 1.0) -> Check:
    return Check(id, f"title of {id}", func, applies, timeout)  # type: ignore[arg-type]


async def test_findings_get_the_id_of_the_check_that_made_them() -> None:
    async def two(c: Context) -> list[Finding]:
        return [ok("first"), fail("second", fix=Fix("do this", ["cmd"]))]

    found = await runner.run([declared("demo.two", two)], ctx())
    assert [(f.id, f.status, f.title) for f in found] == [
        ("demo.two", "ok", "first"),
        ("demo.two", "fail", "second"),
    ]


async def test_a_check_that_raises_becomes_a_crash_finding_and_the_others_still_run() -> None:
    async def boom(c: Context) -> list[Finding]:
        raise KeyError("eth0")

    async def fine(c: Context) -> list[Finding]:
        return [ok("fine")]

    found = await runner.run([declared("demo.boom", boom), declared("demo.fine", fine)], ctx())
    crash, good = found
    assert (crash.id, crash.status, crash.title) == (
        "demo.boom",
        "crash",
        "title of demo.boom: the check failed",
    )
    assert crash.evidence == {"error": "KeyError: 'eth0'"}  # no traceback without --debug
    assert (good.id, good.status) == ("demo.fine", "ok")


async def test_debug_keeps_the_traceback_of_a_crash() -> None:
    async def boom(c: Context) -> list[Finding]:
        raise RuntimeError("no result")

    (crash,) = await runner.run([declared("demo.boom", boom)], ctx(), debug=True)
    assert "RuntimeError: no result" in str(crash.evidence["traceback"])


async def test_a_check_past_its_time_limit_is_unknown_and_names_the_limit() -> None:
    async def slow(c: Context) -> list[Finding]:
        await asyncio.sleep(30)
        return []

    (late,) = await runner.run([declared("demo.slow", slow, timeout=0.05)], ctx())
    assert (late.id, late.status, late.title) == (
        "demo.slow",
        "warn",
        "title of demo.slow: unknown, because it gave no result within 0.05 s",
    )


async def test_no_check_outlives_the_run_budget_whatever_its_own_limit() -> None:
    async def slow(c: Context) -> list[Finding]:
        await asyncio.sleep(30)
        return []

    t0 = asyncio.get_running_loop().time()
    (late,) = await runner.run([declared("demo.slow", slow, timeout=60)], ctx())
    assert asyncio.get_running_loop().time() - t0 < runner.BUDGET + 0.5
    assert late.title.endswith(f"no result within {runner.BUDGET:g} s")


async def test_a_check_that_does_not_apply_is_skipped_with_the_reason() -> None:
    async def never(c: Context) -> list[Finding]:
        raise AssertionError("must not run")

    def not_here(c: Context) -> str | None:
        return "not running in WSL (this is linux)"

    (skipped,) = await runner.run([declared("demo.wsl", never, not_here)], ctx())
    assert (skipped.status, skipped.detail) == ("skip", "not running in WSL (this is linux)")


def test_selecting_an_unknown_check_is_a_usage_error_and_a_prefix_selects_a_group() -> None:
    with pytest.raises(UsageError, match="unknown check 'nosuch'"):
        runner.select(["nosuch"])
    assert {c.id for c in runner.select(["raw"])} == {"raw.syn", "raw.host", "raw.mtu"}


FINDINGS = [
    Finding(id="a.ok", status="ok", title="All good", detail="hidden unless -v"),
    Finding(
        id="a.fail",
        status="fail",
        title="Port 8000 bound to eth0",
        detail="the relay does not forward it",
        fix=Fix("bind 0.0.0.0:8000", ["wslnet forward 8000"], "windows"),
    ),
    Finding(id="a.skip", status="skip", title="Raw probes", detail="no root"),
]


def test_people_see_failures_with_their_fix_and_a_summary() -> None:
    text = render.for_people(FINDINGS, verbose=False, color=False)
    assert text.splitlines() == [
        "✓ All good",
        "✗ Port 8000 bound to eth0",
        "    the relay does not forward it",
        "    fix: bind 0.0.0.0:8000",
        "    run on Windows, in PowerShell:",
        "      PS> wslnet forward 8000",
        "",
        "1 ok, 1 fail, 1 skip",
    ]


def test_verbose_shows_details_and_skipped_checks() -> None:
    text = render.for_people(FINDINGS, verbose=True, color=False)
    assert "    hidden unless -v" in text and "- Raw probes" in text


def test_json_has_schema_environment_findings_and_summary() -> None:
    doc = json.loads(render.as_json(ENV, FINDINGS))
    assert doc["schema"] == 1
    assert doc["environment"]["kind"] == "linux"
    assert doc["findings"][1]["fix"] == {
        "text": "bind 0.0.0.0:8000",
        "commands": ["wslnet forward 8000"],
        "where": "windows",
    }
    assert doc["summary"] == {"ok": 1, "warn": 0, "fail": 1, "skip": 1, "info": 0, "crash": 0}


def listener_finding(port: int, reach: str, address: str = "127.0.0.1") -> Finding:
    ev: dict[str, object] = {"proto": "tcp", "address": address, "port": port}
    cause = {"yes": "relayed", "no": "bound-to-eth0"}[reach]
    ev.update(process="node", windows_localhost=reach, cause=cause, reason="r")
    return Finding(id="listeners.bind-address", status="ok", title="t", evidence=ev)


def test_the_picture_stays_readable_at_30_ports_with_problems_first() -> None:
    from wslnet.check.picture import MAX_PORTS, picture

    env = Environment(
        "wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": ["198.18.5.20"]}
    )
    found = [listener_finding(3000 + n, "yes") for n in range(29)]
    found.append(listener_finding(8000, "no", "198.18.5.20"))
    lines = picture(env, found, 80).splitlines()
    assert lines[0] == "Windows host ? ═══ NAT ═══ WSL VM 198.18.5.20 (Ubuntu)"
    assert lines[1] == "  localhost:8000 ─╳ 198.18.5.20:8000 (node): bound to eth0 only, fix below"
    assert len(lines) == 1 + MAX_PORTS + 1
    assert lines[-1] == "  … and 18 more ports (findings below)"


def test_the_picture_says_what_mirrored_mode_and_windows_are() -> None:
    from wslnet.check.picture import picture

    mirrored = Environment("wsl2", "mirrored", "", "Debian", "", "wsl2", None, False)
    head = picture(mirrored, [listener_finding(5173, "yes")], 120, ascii=True).splitlines()
    assert head == [
        "Windows === mirrored: one localhost === WSL (Debian)",
        "  localhost:5173 -> shared localhost -> 127.0.0.1:5173 (node) ok",
    ]
    assert picture(ENV, [], 80).splitlines() == ["linux: not WSL", "  (no listening ports)"]


def test_the_picture_colors_problems_red_and_fine_ports_green_only_when_asked() -> None:
    from wslnet.check.picture import picture

    env = Environment(
        "wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": ["198.18.5.20"]}
    )
    found = [listener_finding(5173, "yes"), listener_finding(8000, "no", "198.18.5.20")]
    head, bad, good = picture(env, found, 80, color=True).splitlines()
    assert "\x1b" not in head
    assert bad.startswith("\x1b[31m  localhost:8000") and bad.endswith("\x1b[0m")
    assert good.startswith("\x1b[32m  localhost:5173")
    assert "\x1b" not in picture(env, found, 80)


def test_no_color_in_the_environment_turns_color_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert render.use_color()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not render.use_color()


def test_the_picture_says_why_from_the_cause_not_from_the_words() -> None:
    from wslnet.check.picture import picture

    env = Environment(
        "wsl2", "nat", "", "Ubuntu", "", "wsl2", None, False, {"eth0": ["198.18.5.20"]}
    )
    off = listener_finding(3000, "no", "0.0.0.0")
    off.evidence.update(cause="localhost-forwarding-off", reason="(any words)")
    loop = listener_finding(3001, "no", "127.0.0.2")
    loop.evidence.update(cause="bound-to-other-loopback", reason="localhostForwarding")
    tunnel = listener_finding(53, "no", "10.255.255.254")
    tunnel.evidence.update(windows_localhost="n/a", cause="wsl-dns-tunnel", reason="x: y")
    lines = picture(env, [off, loop, tunnel], 100, ascii=True).splitlines()
    assert lines[1:] == [
        "  localhost:3000 -x 0.0.0.0:3000 (node): localhostForwarding=false, fix below",
        "  localhost:3001 -x 127.0.0.2:3001 (node): bound to 127.0.0.2 only, fix below",
        "  . 10.255.255.254:53 (node): WSL's DNS tunnel (dnsTunneling)",
    ]
