"""`wslnet check` from its typed config: run the checks, print them in the form asked
for (people, JSON, a bug report), then the --fix session or --undo. The CLI only maps its
options to a CheckConfig; the exit code comes back from here."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import click

from wslnet.check import render, runner
from wslnet.check.context import Context, Options
from wslnet.check.model import Finding
from wslnet.where import Environment, detect


@dataclass(frozen=True)
class CheckConfig:
    ids: tuple[str, ...]
    options: Options
    list_checks: bool = False
    as_json: bool = False
    report: bool = False
    verbose: bool = False
    ascii: bool = False  # --ascii (ASCII is also chosen by itself under LANG=C)
    no_picture: bool = False
    debug: bool = False
    given: tuple[str, ...] = ()  # the words after `check` on the command line (the root hint)
    fix: bool = False
    dry_run: bool = False
    yes: bool = False
    undo: bool = False
    shutdown: bool = False


def run_command(cfg: CheckConfig) -> int:
    """The exit code: 0 when nothing failed (or, after --fix, when nothing fails now)."""
    if cfg.list_checks:
        for c in runner.select([]):
            click.echo(f"{c.id:<24} {c.title}")
        return 0
    from wslnet.check.fix import session as fixing

    fixes = fixing.config(cfg.fix, cfg.dry_run, cfg.yes, cfg.undo, render.terminal(cfg.ascii)[1],
                          cfg.as_json or cfg.report, cfg.shutdown)  # fmt: skip
    selected = runner.select(list(cfg.ids))
    env = detect()
    if fixes is not None and fixes.undo:
        return asyncio.run(fixing.undo(env, cfg.options, fixes, fixing.StdConsole()))
    context = Context(env, cfg.options)

    async def go() -> list[Finding]:
        return await runner.run(selected, context, cfg.debug)

    findings = asyncio.run(go())
    ran = [c.id for c in selected]
    click.echo(_rendered(cfg, context, findings, ran))
    if fixes is not None:
        go_fix = fixing.fix(env, cfg.options, ran, findings, fixes, fixing.StdConsole())
        return asyncio.run(go_fix)
    return 1 if any(f.status in ("fail", "crash") for f in findings) else 0


def _rendered(cfg: CheckConfig, context: Context, findings: list[Finding], ran: list[str]) -> str:
    """The findings in the form asked for: a bug report, JSON, or for people."""
    if cfg.report:
        from wslnet.check import report as facts

        path, conf = context.wslconfig_seen()
        user = facts.windows_user(path)
        settings = facts.settings(conf)
        return facts.markdown_report(context.env, findings, facts.versions(context.env),
                                     settings, user)  # fmt: skip
    if cfg.as_json:
        return render.as_json(context.env, findings)
    return for_people(cfg, context.env, findings, ran)


def for_people(
    cfg: CheckConfig, env: Environment, findings: list[Finding], ids_run: list[str]
) -> str:
    """`check`'s text: the picture (when the run gathered what it shows), the findings
    wrapped to the terminal, and the hint for checks that need root."""
    from wslnet.check.picture import drawable, picture

    width, ascii_only = render.terminal(cfg.ascii)
    color = render.use_color()
    text = render.for_people(findings, cfg.verbose, color, ascii_only, render.wrap_width(width))
    if not cfg.no_picture and drawable(env, set(ids_run)):
        text = picture(env, findings, width, ascii_only, color) + "\n\n" + text
    hint = render.root_hint(env, ids_run, cfg.options.raw, list(cfg.given))
    text += f"\n{hint}" if hint else ""
    if ascii_only:  # LANG=C or a legacy code page: what it cannot show becomes "?"
        text = text.encode("ascii", "replace").decode("ascii")
    return text


def given_words(ids: tuple[str, ...]) -> tuple[str, ...]:
    """The words after `check` as typed (the root hint repeats them), else the ids."""
    argv = sys.argv
    return tuple(argv[argv.index("check") + 1 :]) if "check" in argv else ids
