"""Command line: click commands only; each maps its options to a typed config."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

import click

from wslnet import __version__
from wslnet.errors import UsageError, WslnetError
from wslnet.forward.core.config import Engine as EngineName
from wslnet.forward.core.config import ForwardConfig, LogFormat, LoopName

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from wslnet.forward.control.client import ApiClient

# Commands import what they need inside their bodies: `wslnet ip host` is called from
# scripts and must start fast, so nothing heavy (asyncio, aiohttp, scapy) loads at import.

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ForwardConfig)}


class _Seconds(click.FloatRange):
    """A number of seconds: finite (click's FloatRange lets `nan` through)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


PROBE_SECONDS = _Seconds(0.05, 30)


@dataclass
class Session:
    """What the group's options say for every command."""

    debug: bool = False


class _Group(click.Group):
    """Turns an error a user can act on into one line and its exit code (a traceback
    only with --debug); anything unexpected into one line too."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:  # --help and --version print while the options are parsed
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            pipe_closed()

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            pipe_closed()
        except WslnetError as exc:
            _traceback_if_debug(ctx)
            click.echo(f"wslnet: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            _traceback_if_debug(ctx)
            click.echo(
                f"wslnet: internal error: {type(exc).__name__}: {exc} "
                "(run with --debug for details)",
                err=True,
            )
            sys.exit(1)


def _traceback_if_debug(ctx: click.Context) -> None:
    if isinstance(ctx.obj, Session) and ctx.obj.debug:
        import traceback

        traceback.print_exc()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wslnet")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Makes WSL2 networking work, and explains it when it doesn't."""
    ctx.obj = Session(debug)


def _load_config_file(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    """--config (or the default file if it exists): its settings become the defaults of
    the other options, so a flag given on the command line wins."""
    from pathlib import Path

    from wslnet.forward.control.configfile import default_path, load

    path = Path(value) if value else default_path()
    if value is None and not _is_regular_file(path):
        return None
    file = load(path)
    ctx.default_map = {**(ctx.default_map or {}), **file.settings}
    return file


def _is_regular_file(path: Path) -> bool:
    """Whether a regular file is there; a folder on the way that we may not search is
    UsageError (Path.is_file raises it before Python 3.12, and hides it after)."""
    import stat

    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def _networks(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> object:
    from wslnet.forward.core.rules import parse_networks

    return parse_networks(value, "--allow") if value else None


def _ports(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    from wslnet.forward.core.config import parse_ports

    return parse_ports(value, f"--{param.name}") if value is not None else None


@cli.command(context_settings={"show_default": True})
@click.argument("rules", nargs=-1, metavar="RULE...")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=True,
    callback=_load_config_file,
    help="TOML file with settings and [[forward]] tables (reloaded on change).",
)
@click.option(
    "--connect-timeout",
    type=float,
    default=_DEFAULTS["connect_timeout"],
    help="Seconds to reach a target.",
)
@click.option("--idle-timeout", type=float, help="Close connections idle this long (seconds).")
@click.option("--max-conns", type=int, help="Open connections allowed per rule.")
@click.option(
    "--drain",
    type=float,
    default=_DEFAULTS["drain"],
    help="Seconds open connections get on shutdown.",
)
@click.option(
    "--log-format",
    type=click.Choice(get_args(LogFormat)),
    default=_DEFAULTS["log_format"],
    help="Log lines as text or JSON lines, on stderr.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the log here (rotated at 5 MiB, 3 kept) instead of stderr; without a "
    "stderr (pythonw, a scheduled task) %LOCALAPPDATA%\\wslnet\\forward.log is used.",
)
@click.option("-v", "--verbose", count=True, show_default=False, help="More log lines.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--engine",
    type=click.Choice(get_args(EngineName)),
    default=_DEFAULTS["engine"],
    help="Data path: splice (Linux, zero-copy) or asyncio protocols.",
)
@click.option(
    "--allow",
    multiple=True,
    metavar="CIDR",
    callback=_networks,
    help="Who may connect to rules and to an --api that listen beyond loopback "
    "(repeatable); loopback clients are this machine and always may.",
)
@click.option("--allow-any", is_flag=True, help="Let anyone connect to non-loopback rules.")
@click.option(
    "--resolve-interval",
    type=float,
    default=_DEFAULTS["resolve_interval"],
    help="Seconds between lookups of wsl, host and names.",
)
@click.option(
    "--udp-timeout",
    type=float,
    default=_DEFAULTS["udp_timeout"],
    help="Seconds an idle UDP session lives.",
)
@click.option(
    "--udp-max-sessions",
    type=int,
    default=_DEFAULTS["udp_max_sessions"],
    help="Open UDP sessions allowed per rule.",
)
@click.option(
    "--api",
    default=None,
    metavar="[HOST:]PORT",
    help="Serve the HTTP control API here (loopback unless --api-allow-remote).",
)
@click.option("--api-allow-remote", is_flag=True, help="Let --api listen beyond loopback.")
@click.option(
    "--auto",
    is_flag=True,
    help="Watch WSL's listeners; forward UDP and eth0-bound TCP ones (via wsl.exe).",
)
@click.option(
    "--include", metavar="PORTS", callback=_ports, help="--auto: only these (3000-9999,22)."
)
@click.option("--exclude", metavar="PORTS", callback=_ports, help="--auto: never these.")
@click.option("--lan", is_flag=True, help="--auto: listen on 0.0.0.0, for the LAN (needs --allow).")
@click.option("--distro", help="--auto: the WSL distribution to watch.")
@click.option(
    "--boot",
    is_flag=True,
    help="Start a stopped WSL distribution to reach a wsl target (by default its rules "
    "reset clients, saying it is stopped). --auto keeps the VM running while it watches.",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(get_args(LoopName)),
    default=_DEFAULTS["loop"],
    help="Event loop; auto takes uvloop where installed.",
)
def forward(rules: tuple[str, ...], **opts: Any) -> None:
    """Forward TCP and UDP ports, between Windows and WSL or anywhere.

    \b
    RULE   = [tcp/|udp/]LISTEN[=TARGET]
    LISTEN = [HOST:]PORT   no HOST: 127.0.0.1 and [::1]; IPv6 in brackets: [::1]:8080
    TARGET = [HOST:]PORT   an IP address, a host name, wsl, wsl@DISTRO (the WSL VM,
                           found with wsl.exe) or host (the Windows host, from WSL);
                           no HOST means wsl; no TARGET means wsl:PORT

    Stop with Ctrl+C or SIGTERM (on Windows also closing the console, Ctrl+Break, logoff
    and shutdown): open connections drain for --drain seconds. The config file reloads
    when it changes, on SIGHUP (not on Windows) and through the API.

    \b
    Examples:
      wslnet forward 8080                      (Windows localhost:8080 -> WSL :8080)
      wslnet forward 8080=3000 udp/5353=wsl@Debian:53
      wslnet forward 0.0.0.0:2222=wsl:22 --allow 198.19.0.0/24
    """
    from wslnet.forward.core.config import AutoConfig
    from wslnet.forward.core.rules import parse_rule
    from wslnet.forward.run import run

    file = opts.pop("config_file")
    allow = opts.pop("allow")
    auto_opts = {k: opts.pop(k) for k in ("include", "exclude", "lan", "distro")}
    auto = None
    if opts.pop("auto"):
        auto = AutoConfig(
            auto_opts["include"] or (),
            auto_opts["exclude"] or (),
            auto_opts["lan"],
            auto_opts["distro"],
        )
    else:
        given = [k for k, v in auto_opts.items() if v not in (None, False)]
        if given:
            raise UsageError(f"--{given[0]} goes with --auto")
    api, api_allow_remote = opts.pop("api"), opts.pop("api_allow_remote")
    verbose, quiet = opts.pop("verbose"), opts.pop("quiet")
    config = ForwardConfig(
        rules=tuple(parse_rule(r, allow) for r in rules),
        config_path=file.path if file is not None else None,
        api=_api_address(api, api_allow_remote) if api is not None else None,
        auto=auto,
        allow=allow,
        verbosity=-1 if quiet else verbose,
        loop=opts.pop("loop_name"),
        **opts,
    )
    sys.exit(run(config, file))


def _api_address(text: str, allow_remote: bool) -> tuple[str, int]:
    from wslnet.forward.core.rules import RuleError, parse_rule

    try:
        ep = parse_rule(f"{text}=1").listen
    except RuleError:
        raise UsageError(f"--api {text!r}: expected [HOST:]PORT such as 7070") from None
    if "/" in text:
        raise UsageError(f"--api {text!r}: expected [HOST:]PORT such as 7070")
    host = ep.host or "127.0.0.1"
    if not (ep.loopback or allow_remote):
        raise UsageError(f"--api {text!r} is beyond loopback: add --api-allow-remote to mean it")
    return host, ep.port


def _api_url(api: str | None) -> str | None:
    """--api as a URL ([HOST:]PORT or a URL as given; None stays None)."""
    if api is not None and "://" not in api:
        from wslnet.forward.core.rules import format_hostport

        api = "http://" + format_hostport(*_api_address(api, allow_remote=True))
    return api


def _api_client(api: str | None) -> ApiClient:
    """The running forwarder that --api names ([HOST:]PORT or a URL), or the newest one."""
    from wslnet.forward.control.client import ApiClient

    return ApiClient.locate(_api_url(api))


_API_OPTION = click.option(
    "--api",
    "api",
    default=None,
    metavar="[HOST:]PORT",
    help="Where the API listens, as given to `forward --api` (or a URL). "
    "Default: from the state file.",
)


@cli.command()
@_API_OPTION
@click.option("--no-browser", is_flag=True, help="Print the login link; open no browser.")
def dashboard(api: str | None, no_browser: bool) -> None:
    """Open the live dashboard of a running `wslnet forward --api` (a one-time login link)."""
    from wslnet.forward.control.client import open_privately

    client = _api_client(api)
    doc = client.call("/v1/login-link", "POST")
    link = doc.get("url") if isinstance(doc, dict) else None
    if not isinstance(link, str):
        raise WslnetError(f"{client.url}: the answer holds no login link; is it wslnet?")
    if no_browser:
        click.echo(link)
        return
    # The browser gets a file only we can read, never the link: any local user reads
    # a command line (/proc/PID/cmdline), and the link is a session for whoever is first.
    opened = open_privately(link)
    click.echo(f"opened the dashboard in your browser (through {opened})" if opened else link)


@cli.group()
def service() -> None:
    """Run `wslnet forward --config ...` at logon and keep it running.

    On Windows: a Task Scheduler task for you (no Administrator needed), run windowless
    by pythonw.exe and restarted on failure. In WSL or Linux: a systemd user unit.
    """


_KIND = click.option(
    "--kind",
    type=click.Choice(["auto", "task", "systemd"]),
    default="auto",
    show_default=True,
    help="task (Windows Task Scheduler) or systemd (a user unit); auto: this platform's.",
)


def _kind(kind: str) -> Any:
    from wslnet import service as svc

    return svc.default_kind() if kind == "auto" else kind


@service.command("install")
@_KIND
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The forwarder's TOML file (default: %APPDATA%\\wslnet\\forward.toml on "
    "Windows, ~/.config/wslnet/forward.toml elsewhere).",
)
def service_install(kind: str, config_file: Path | None) -> None:
    """Install and start the service (after checking that the config file parses).

    It serves the control API on a free loopback port, so `wslnet status` and
    `wslnet dashboard` find it; `api = false` in the config file turns that off.
    """
    from wslnet import service as svc
    from wslnet.forward.control.configfile import default_path

    k = _kind(kind)
    config = config_file or default_path(windows=k == "task")
    click.echo(svc.install(k, config))


@service.command("uninstall")
@_KIND
def service_uninstall(kind: str) -> None:
    """Stop and remove the service."""
    from wslnet import service as svc

    click.echo(svc.uninstall(_kind(kind)))


@service.command("status")
@_KIND
def service_status(kind: str) -> None:
    """Whether the service is installed and running, and what its API says."""
    from wslnet import service as svc

    st = svc.state(_kind(kind))
    click.echo(st.words())
    if not st.installed:
        sys.exit(1)
    try:
        click.echo(f"API: {_api_client(None).url} (wslnet status for more)")
    except WslnetError as exc:
        click.echo(f"API: {exc.message}")


@cli.command()
@click.option(
    "--json", "as_json", is_flag=True, help="A JSON object (schema 1), even when none runs."
)
@_API_OPTION
def status(as_json: bool, api: str | None) -> None:
    """Every running `wslnet forward` (pid, rules, API); live counters where it has --api.

    Exit code 0 when one runs, 1 when none does.
    """
    from wslnet.contract import document, dumps
    from wslnet.forward.control.client import survey
    from wslnet.forward.control.statefile import state_dir
    from wslnet.forward.control.status import render_running

    seen = survey(_api_url(api))
    if as_json:
        click.echo(dumps(document(running=bool(seen), forwarders=[s.as_json() for s in seen])))
    else:
        click.echo(render_running(seen, str(state_dir())))
    sys.exit(0 if seen else 1)


def _complete_check(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """`wslnet check li<TAB>`: the check ids and their families (listeners, raw...)."""
    from click.shell_completion import CompletionItem

    from wslnet.check import runner

    checks = runner.select([])
    names = {c.id: c.title for c in checks}
    for c in checks:
        family = c.id.split(".")[0]
        names.setdefault(family, f"every {family}.* check")
    return [
        CompletionItem(name, help=title)
        for name, title in sorted(names.items())
        if name.startswith(incomplete)
    ]


@cli.command(context_settings={"show_default": True})
@click.argument("ids", nargs=-1, metavar="[CHECK]...", shell_complete=_complete_check)
@click.option("--list", "list_checks", is_flag=True, help="List the checks and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema 1) for scripts.")
@click.option("-v", "--verbose", is_flag=True, help="Details, evidence and skipped checks.")
@click.option(
    "--host-port",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Probe this Windows port from here (repeatable).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Focus the listener report on this port.",
)
@click.option(
    "--wslconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read this .wslconfig instead of %UserProfile%\\.wslconfig.",
)
@click.option(
    "--timeout",
    type=PROBE_SECONDS,
    default=1.0,
    help="Seconds each probe waits for an answer.",
)
@click.option("--no-raw", is_flag=True, help="No packet-level probes (SYN, ARP, ICMP, MTU).")
@click.option(
    "--report", is_flag=True, help="Markdown for a bug report: versions, settings, evidence."
)
@click.option(
    "--boot",
    is_flag=True,
    help="On Windows: start a stopped WSL distribution to read its mode and listeners.",
)
@click.option("--no-picture", is_flag=True, help="No drawing of the network above the findings.")
@click.option(
    "--ascii", is_flag=True, help="ASCII only, no box drawing (chosen by itself under LANG=C)."
)
@click.option("--target", multiple=True, help="Also measure the path MTU to this address.")
@click.option("--fix", is_flag=True, help="Offer the fixes wslnet can apply, and ask.")
@click.option("--dry-run", is_flag=True, help="With --fix or --undo: print the commands, run none.")
@click.option(
    "-y", "--yes", is_flag=True, help="With --fix: apply every fix offered, without asking."
)
@click.option("--undo", is_flag=True, help="Undo the last fixes --fix applied, and check again.")
@click.option(
    "--shutdown",
    is_flag=True,
    help="With --fix/--yes/--undo: run `wsl --shutdown` when a change needs it (it stops "
    "every WSL distribution); without it, --fix asks on its own and --yes does not run it.",
)
def check(
    ids: tuple[str, ...],
    list_checks: bool,
    as_json: bool,
    verbose: bool,
    host_port: tuple[int, ...],
    port: int | None,
    wslconfig: str | None,
    timeout: float,
    no_raw: bool,
    report: bool,
    boot: bool,
    no_picture: bool,
    ascii: bool,
    target: tuple[str, ...],
    fix: bool,
    dry_run: bool,
    yes: bool,
    undo: bool,
    shutdown: bool,
) -> None:
    """Diagnose WSL networking: every finding with its fix.

    CHECK is a check id or a family of them (`wslnet check --list` lists them); none
    runs every check. Exit code 0 when nothing failed, 1 when something did, 2 for bad
    usage.

    \b
    Examples:
      wslnet check                          (everything, the network drawn on top)
      wslnet check listeners --port 5173    (can Windows reach my dev server?)
      wslnet check host --host-port 5432    (can I reach Postgres on Windows?)
      wslnet check dns                      (is the resolver alive?)
      wslnet check --json | jq '.findings[] | select(.status == "fail")'
      sudo "$(command -v wslnet)" check raw (packet-level checks need root)
      wslnet check --fix                    (apply the fixes it can, after asking)
      wslnet check --undo                   (put back what the last --fix changed)
    """
    from wslnet.check.command import CheckConfig, given_words, run_command
    from wslnet.check.context import Options

    session = click.get_current_context().find_object(Session)
    options = Options(list(host_port), port, wslconfig, timeout, not no_raw, list(target), boot)
    sys.exit(run_command(CheckConfig(
        ids, options, list_checks, as_json, report, verbose, ascii, no_picture,
        bool(session and session.debug), given_words(ids), fix, dry_run, yes, undo, shutdown,
    )))  # fmt: skip


@cli.group()
def ip() -> None:
    """Addresses for scripts: the Windows host, the WSL VM."""


def _print_address(which: str, as_json: bool, boot: bool = False) -> None:
    from wslnet import hostaddr
    from wslnet.contract import document, dumps
    from wslnet.where import detect

    env = detect()
    found = hostaddr.find_host(env) if which == "host" else hostaddr.find_wsl(env, boot)
    if as_json:
        click.echo(dumps(document(**found.as_json())))
    elif found.address:
        click.echo(found.address)
    if found.address is None:
        if not as_json:
            click.echo(f"wslnet: no {which} address: {found.why_none}", err=True)
        sys.exit(1)


@ip.command("host")
@click.option("--json", "as_json", is_flag=True, help="Every candidate, with its verdict.")
def ip_host(as_json: bool) -> None:
    """The Windows host's address as seen from here."""
    _print_address("host", as_json)


@ip.command("wsl")
@click.option("--json", "as_json", is_flag=True, help="Every candidate, with its verdict.")
@click.option("--boot", is_flag=True, help="On Windows: start WSL if it is not running.")
def ip_wsl(as_json: bool, boot: bool) -> None:
    """The address Windows would use to reach WSL (on Windows: asked through wsl.exe)."""
    _print_address("wsl", as_json, boot)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON object (schema 1) for scripts.")
@click.option(
    "--wslconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read this .wslconfig instead of %UserProfile%\\.wslconfig.",
)
def listeners(as_json: bool, wslconfig: str | None) -> None:
    """Listening sockets, and whether Windows can reach each as localhost."""
    import asyncio

    from wslnet import listeners as mod
    from wslnet.check.context import Context, Options
    from wslnet.where import detect

    context = Context(detect(), Options(wslconfig=wslconfig))
    found, problems = asyncio.run(context.listeners())  # the same verdicts as `check`
    for p in problems:
        click.echo(f"wslnet: skipped an unreadable line: {p}", err=True)
    if as_json:
        from wslnet.contract import document, dumps

        click.echo(dumps(document(listeners=[x.as_json() for x in found])))
        return
    from wslnet.check.render import terminal, wrap_width

    click.echo(mod.render_table(found, wrap_width(terminal()[0])))


@cli.group()
def probe() -> None:
    """Packet-level probes for scripts (need root or CAP_NET_RAW).

    Exit code 0 when the answer is the healthy one, 1 when not, 2 when the probe cannot run.
    """


def _raw_or_exit() -> None:
    from wslnet import system

    if not system.is_root_or_raw_capable():
        if sys.platform == "win32":
            why = "packet-level probes run in WSL or Linux, not on Windows (no Npcap)"
        else:
            why = "packet-level probes need root or CAP_NET_RAW: run with sudo"
        click.echo(f"wslnet: {why}", err=True)
        sys.exit(2)


def _report(kind: str, result: object, as_json: bool, healthy: bool, line: str) -> None:
    from dataclasses import asdict, is_dataclass

    from wslnet.contract import document, dumps

    if as_json:
        assert is_dataclass(result) and not isinstance(result, type)
        click.echo(dumps(document(probe=kind, healthy=healthy, **asdict(result))))
    else:
        click.echo(line)
    sys.exit(0 if healthy else 1)


@probe.command("syn")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--timeout", type=PROBE_SECONDS, default=1.0, help="Seconds to wait for an answer.")
@click.option("--json", "as_json", is_flag=True, help="A JSON object (schema 1) for scripts.")
def probe_syn(host: str, port: int, timeout: float, as_json: bool) -> None:
    """One SYN to HOST:PORT: open, closed, filtered or unreachable (with the ICMP code)."""
    _raw_or_exit()
    from wslnet.probe import raw

    r = raw.syn(host, port, timeout)
    what = r.state + (f" ({r.icmp})" if r.icmp else "")
    rtt = f" in {r.rtt * 1000:.1f} ms" if r.rtt is not None else ""
    _report("syn", r, as_json, r.state == "open", f"{host}:{port} {what}{rtt}")


@probe.command("mtu")
@click.argument("host")
@click.option("--json", "as_json", is_flag=True, help="A JSON object (schema 1) for scripts.")
def probe_mtu(host: str, as_json: bool) -> None:
    """The path MTU to HOST, against the outgoing interface's MTU."""
    _raw_or_exit()
    from wslnet.probe import raw

    r = raw.path_mtu(host)
    if r.path_mtu is None:
        why = "; ".join(r.notes) or "no answer to ICMP echo"
        line = f"path MTU to {host}: unknown: {why}"
        if r.interface_mtu:
            line += f"; {r.interface} MTU {r.interface_mtu}"
    else:
        line = f"path MTU to {host}: {r.path_mtu} ({r.method}); {r.interface} MTU {r.interface_mtu}"
    _report("mtu", r, as_json, r.path_mtu is not None and r.path_mtu >= r.interface_mtu, line)


@probe.command("arp")
@click.argument("address", required=False)
@click.option("--timeout", type=PROBE_SECONDS, default=1.0, help="Seconds to wait for an answer.")
@click.option("--json", "as_json", is_flag=True, help="A JSON object (schema 1) for scripts.")
def probe_arp(address: str | None, timeout: float, as_json: bool) -> None:
    """Who-has ADDRESS (default: the default gateway, the Windows host in NAT mode)."""
    _raw_or_exit()
    from wslnet import hostaddr
    from wslnet.probe import raw

    address = address or hostaddr.default_gateway()
    if address is None:
        click.echo("wslnet: no default gateway to ask for; give an ADDRESS", err=True)
        sys.exit(2)
    r = raw.arp(address, timeout)
    line = f"{address} is at {r.mac} on {r.interface}" if r.mac else f"{address}: no ARP answer"
    _report("arp", r, as_json, r.mac is not None, line)


# Exit codes: 0 ok, 1 a failure found or no answer, 2 bad usage, 130 interrupted (Ctrl+C),
# 141 the output pipe closed early (128 + SIGPIPE: what a shell reports for `ls | head`).
PIPE_CLOSED = 141


def pipe_closed() -> NoReturn:
    """The reader of our output has gone (`wslnet check | head -3`): end quietly. What is
    still buffered goes to devnull, else Python's flush at exit fails again (the signal
    module's note on SIGPIPE in the Python docs)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # a stdout without a descriptor (a test runner's): nothing to flush later
    sys.exit(PIPE_CLOSED)


def main() -> None:
    try:
        try:
            cli.main(prog_name="wslnet", standalone_mode=False)
        finally:
            if sys.stdout is not None:  # None without one (pythonw, `>&-`)
                sys.stdout.flush()  # a closed pipe shows here, while we can still end quietly
    except BrokenPipeError:
        pipe_closed()
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("wslnet: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
