"""Runs the checks concurrently, each under its own time limit; a crash is a finding."""

from __future__ import annotations

import asyncio
import traceback

from wslnet.check import checks as _checks  # noqa: F401  (registers the checks)
from wslnet.check import raw_checks as _raw_checks  # noqa: F401
from wslnet.check import windows_checks as _windows_checks  # noqa: F401
from wslnet.check.context import Context
from wslnet.check.model import REGISTRY, Check, Finding, finding


def select(ids: list[str]) -> list[Check]:
    if not ids:
        return list(REGISTRY)
    known = {c.id: c for c in REGISTRY}
    unknown = [i for i in ids if i not in known and not any(k.startswith(i + ".") for k in known)]
    if unknown:
        from wslnet.errors import UsageError

        raise UsageError(f"unknown check {unknown[0]!r}; `wslnet check --list` lists them")
    return [c for c in REGISTRY if c.id in ids or any(c.id.startswith(i + ".") for i in ids)]


BUDGET = 1.8  # seconds the whole run may take (all checks run at once)


def budget(ctx: Context) -> float:
    """Every check ends within the run's budget; a longer --timeout lengthens it."""
    return max(BUDGET, ctx.options.probe_timeout + 0.8)


async def _run_one(check: Check, ctx: Context, debug: bool) -> list[Finding]:
    why = check.applies(ctx)
    if why is not None:
        found = [finding("skip", check.title, detail=why)]
    else:
        limit = min(check.timeout, max(budget(ctx), check.budget or 0))
        try:
            found = await asyncio.wait_for(check.func(ctx), limit)
        except asyncio.TimeoutError:
            title = f"{check.title}: unknown, because it gave no result within {limit:g} s"
            found = [finding("warn", title)]
        except Exception as exc:
            ev: dict[str, object] = {"error": f"{type(exc).__name__}: {exc}"}
            if debug:
                ev["traceback"] = traceback.format_exc()
            title = f"{check.title}: the check failed"
            found = [finding("crash", title, detail=str(exc), evidence=ev)]
    for f in found:
        f.id = check.id
    return found


async def run(selected: list[Check], ctx: Context, debug: bool = False) -> list[Finding]:
    results = await asyncio.gather(*(_run_one(c, ctx, debug) for c in selected))
    return [f for group in results for f in group]
