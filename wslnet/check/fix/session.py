"""The steps of `wslnet check --fix` and `--undo`, in order: offer, ask, apply (one batch
per place), journal, re-check, before and after. The decisions are the pure functions of
plan.py, script.py and journal.py; the console and the shell are the only I/O."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol

from wslnet import paths
from wslnet.check import runner
from wslnet.check.context import Context, Options
from wslnet.check.fix import journal, plan, shell, text
from wslnet.check.model import Finding
from wslnet.errors import UsageError
from wslnet.verdict import Action
from wslnet.where import Environment

Consent = Literal["ask", "dry-run", "yes"]
ASKS = 3  # answers that do not parse before we give up


@dataclass(frozen=True)
class FixConfig:
    """What the options asked for: fix or undo, and the consent given."""

    undo: bool
    consent: Consent
    ascii_only: bool = False
    shutdown: bool = False  # --shutdown: `wsl --shutdown` is wanted, when a change needs it


def config(
    fix: bool,
    dry_run: bool,
    yes: bool,
    undo: bool,
    ascii_only: bool,
    for_scripts: bool = False,
    shutdown: bool = False,
) -> FixConfig | None:
    """--dry-run and --yes imply --fix (or go with --undo); None: just check."""
    if shutdown and (dry_run or not (fix or yes or undo)):
        raise UsageError("--shutdown goes with --fix, --yes or --undo: it runs `wsl --shutdown` "
                         "after a change that needs it")  # fmt: skip
    if not (fix or dry_run or yes or undo):
        return None
    if dry_run and yes:
        raise UsageError("--dry-run changes nothing and --yes applies everything: give one")
    if for_scripts:
        raise UsageError("--fix, --dry-run, --yes and --undo print for people: not with "
                         "--json or --report")  # fmt: skip
    consent: Consent = "dry-run" if dry_run else "yes" if yes else "ask"
    return FixConfig(undo, consent, ascii_only, shutdown)


class Console(Protocol):
    def echo(self, line: str) -> None: ...

    def ask(self, question: str) -> str | None:
        """The answer, or None when there is no one to ask (standard input closed)."""


class StdConsole:
    def echo(self, line: str) -> None:
        import click

        click.echo(line)

    def ask(self, question: str) -> str | None:
        import click

        if sys.stdin is None or sys.stdin.closed:
            return None
        click.echo(question, nl=False)
        answer = sys.stdin.readline()
        if not answer:
            click.echo()
            return None
        return answer


NO_ONE_TO_ASK = (
    "--fix asks before it changes anything, and standard input is closed: add --yes to "
    "apply the fixes listed, or --dry-run to see their commands"
)


def _choose(items: list[plan.Item], cfg: FixConfig, console: Console) -> tuple[int, ...]:
    if cfg.consent == "yes":
        return tuple(i.number for i in items)
    for _ in range(ASKS):
        answer = console.ask(text.question(items))
        if answer is None:
            raise UsageError(NO_ONE_TO_ASK)
        try:
            picked = plan.parse_answer(answer, len(items))
        except plan.AnswerError as exc:
            console.echo(str(exc))
            continue
        if isinstance(picked, str):  # plan.LIST
            for line in text.offer(items, with_commands=True):
                console.echo(line)
            continue
        return picked
    return ()


def _apply(actions: list[Action], console: Console) -> dict[Action, str | None]:
    """Runs the actions, one batch per place; the result of each. An action without
    commands (the undo of a restart) has nothing to run: no prompt, no sudo for it."""
    outcome: dict[Action, str | None] = {a: None for a in actions if not a.commands}
    for batch in plan.batches([a for a in actions if a.commands]):
        console.echo(text.running(batch))
        outcome.update(zip(batch.actions, shell.run(batch), strict=True))
    return {a: outcome[a] for a in actions}


def _shutdown(cfg: FixConfig, console: Console) -> None:
    """`wsl --shutdown` stops every distribution: run on --shutdown or its own yes, never
    on the yes to the fixes (nor on --yes alone)."""
    wanted = cfg.shutdown
    if not wanted and cfg.consent == "ask":
        answer = console.ask(text.SHUTDOWN_QUESTION)
        wanted = answer is not None and answer.strip().lower() in ("y", "yes")
    if not wanted:
        console.echo(text.shutdown_later(cfg.consent))
        return
    console.echo(text.shutting_down(shell.shutdown(), cfg.ascii_only))


def _now() -> tuple[str, str]:
    when = datetime.now().astimezone()
    return when.isoformat(timespec="seconds"), when.strftime("%Y%m%dT%H%M%S.%f")


async def _recheck(env: Environment, options: Options, ids: list[str]) -> list[Finding]:
    known = {c.id for c in runner.select([])}
    wanted = [i for i in ids if i in known]
    return await runner.run(runner.select(wanted), Context(env, options)) if wanted else []


def _code(before: list[Finding]) -> int:
    return 1 if plan.failed(before) else 0


async def fix(
    env: Environment,
    options: Options,
    ran: list[str],
    findings: list[Finding],
    cfg: FixConfig,
    console: Console,
) -> int:
    """After the findings were printed: offer the fixes, apply those chosen, prove them.
    The exit code is the state after (1 when a fix did not work or a failure remains)."""
    items = plan.applicable(findings)
    if not items:
        console.echo("No finding here has a fix wslnet can apply; each fix above says what to do.")
        return _code(findings)
    for line in text.offer(items):
        console.echo(line)
    if cfg.consent == "dry-run":
        for line in text.dry_run(plan.batches([i.action for i in items])):
            console.echo(line)
        return _code(findings)
    picked = _choose(items, cfg, console)
    chosen = [i for i in items if i.number in picked]
    if not chosen:
        console.echo("Nothing changed.")
        return _code(findings)
    outcome = _apply([i.action for i in chosen], console)
    applied = tuple(a for a, error in outcome.items() if error is None)
    rerun = [c for i in chosen for c in i.checks if c in ran]
    rerun = list(dict.fromkeys(rerun))
    if applied:
        when, batch = _now()
        record = journal.Record("fix", batch, when, applied, tuple(rerun),
                                tuple(options.host_ports))  # fmt: skip
        shell.append_journal(paths.fix_journal(), record.line())
    after = await _recheck(env, options, rerun)
    worked = True
    for item in chosen:
        error = outcome[item.action]
        proofs = plan.prove(item, after)
        worked &= error is None and all(p.worked for p in proofs)
        for line in text.proof(item, proofs, error, cfg.ascii_only):
            console.echo(line)
    if applied:
        console.echo("Undo with: wslnet check --undo")
    if any(a.needs_shutdown for a in applied):  # last: from WSL it ends this process too
        _shutdown(cfg, console)
    now = plan.after_state(findings, after, set(rerun))
    return 0 if worked and not plan.failed(now) else 1


async def undo(env: Environment, options: Options, cfg: FixConfig, console: Console) -> int:
    """Reverses the last batch in the journal, then runs its checks again, so the user
    sees the finding back."""
    from wslnet.check import render

    path = paths.fix_journal()
    record = journal.last_undoable(journal.parse(shell.read_journal(path)))
    if record is None:
        console.echo(f"Nothing to undo: no fix applied by wslnet is left in {path}")
        return 1
    reversals = [plan.reverse(a) for a in reversed(record.actions)]
    if cfg.consent == "dry-run":
        for line in text.dry_run(plan.batches(reversals), undoing=True):
            console.echo(line)
        return 0
    for line in text.undoing(record.when, tuple(reversals)):
        console.echo(line)
    outcome = _apply(reversals, console)
    when, _ = _now()
    shell.append_journal(path, journal.Record("undo", record.batch, when, tuple(reversals)).line())
    for action, error in outcome.items():
        console.echo(text.undone(action, error, cfg.ascii_only))
    if not options.host_ports:
        options = replace(options, host_ports=list(record.host_ports))
    after = await _recheck(env, options, list(record.checks))
    if after:
        console.echo("Now:")
        console.echo(render.for_people(after, False, False, cfg.ascii_only))
    if any(a.needs_shutdown for a, error in outcome.items() if error is None):
        _shutdown(cfg, console)
    return 0 if all(e is None for e in outcome.values()) else 1
