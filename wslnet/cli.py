"""Command line: click commands only; each maps its options to a typed config."""

from __future__ import annotations

import sys
import traceback

import click

from wslnet import __version__
from wslnet.errors import WslnetError

_state = {"debug": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wslnet")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    """Makes WSL2 networking work, and explains it when it doesn't."""
    _state["debug"] = debug


@cli.command(context_settings={"show_default": True})
@click.argument("rules", nargs=-1, metavar="RULE...")
@click.option("--connect-timeout", type=float, default=5.0, help="Seconds to reach a target.")
@click.option(
    "--idle-timeout", type=float, default=None, help="Close connections idle this long (seconds)."
)
@click.option("--max-conns", type=int, default=None, help="Open connections allowed per rule.")
@click.option("--drain", type=float, default=5.0, help="Seconds open connections get on shutdown.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("-v", "--verbose", count=True, help="More log lines.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "splice", "protocol"]),
    default="auto",
    help="Data path: splice (Linux, zero-copy) or asyncio protocols.",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    help="Event loop; auto takes uvloop where installed.",
)
def forward(
    rules: tuple[str, ...],
    connect_timeout: float,
    idle_timeout: float | None,
    max_conns: int | None,
    drain: float,
    log_format: str,
    verbose: int,
    quiet: bool,
    engine: str,
    loop_name: str,
) -> None:
    """Forward TCP ports.

    \b
    RULE   = [tcp/]LISTEN=TARGET
    LISTEN = [HOST:]PORT    HOST defaults to 127.0.0.1; IPv6 in brackets: [::1]:8080
    TARGET = HOST:PORT      an IP address or a host name

    \b
    Examples:
      wslnet forward 8080=198.18.5.20:8080
      wslnet forward 0.0.0.0:2222=198.18.5.20:22 '[::1]:9000=localhost:9000'
    """
    from wslnet.forward.config import ForwardConfig
    from wslnet.forward.rules import parse_rule
    from wslnet.forward.run import run

    config = ForwardConfig(
        rules=tuple(parse_rule(r) for r in rules),
        connect_timeout=connect_timeout,
        idle_timeout=idle_timeout,
        max_conns=max_conns,
        drain=drain,
        log_format="json" if log_format == "json" else "text",
        verbosity=-1 if quiet else verbose,
        engine="splice" if engine == "splice" else "protocol" if engine == "protocol" else "auto",
        loop="asyncio" if loop_name == "asyncio" else "uvloop" if loop_name == "uvloop" else "auto",
    )
    sys.exit(run(config))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("wslnet: aborted", err=True)
        sys.exit(130)
    except WslnetError as exc:
        if _state["debug"]:
            traceback.print_exc()
        click.echo(f"wslnet: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if _state["debug"]:
            traceback.print_exc()
        click.echo(
            f"wslnet: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        sys.exit(1)
