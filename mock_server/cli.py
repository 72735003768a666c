"""The `capture-replay` command group: `serve` and `record` here, and the commands over cassette
files mounted from `recorder.cli` and `recorder.cli_guard`. The only place that reads the
environment and argv; it builds one frozen config and hands it down. Errors become one line on
stderr and exit code 1 through `recorder.cli_errors` (the one mapping).

`record --record-mode new_episodes` composes the proxy with `mock_server.replay.episodes`'s
in-process replayer.
Imports no command module other than the recorder's two it mounts.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from mock_server import __version__
from mock_server.config import (
    DEFAULT_KEEP_CLOSED_SECONDS,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_PORT,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    ClockMode,
    Exhausted,
    Mode,
    RecordMode,
    RecordPlan,
    ServerConfig,
    default_max_total_sessions,
    plan_recording,
    read_users_file,
)
from mock_server.errors import CaptureError
from mock_server.serving import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    bind,
    run,
    serve_app,
)
from recorder import cli as cassette_cli
from recorder import cli_guard
from recorder.cassette import WriteMode
from recorder.cli_errors import error_line, one_line_errors
from recorder.contract import DEFAULT_UPSTREAM
from recorder.errors import RecorderError
from recorder.proxy import DEFAULT_PORT as PROXY_PORT
from recorder.proxy import ProxyConfig, run_proxy, serve_proxy
from recorder.redaction import RedactionRules

if TYPE_CHECKING:
    from mock_server.replay.episodes import EpisodeReplayer


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capture-replay")
def main() -> None:
    """Record, replay and emulate the Capture browser-sessions API offline."""


for _group in (cassette_cli.commands, cli_guard.commands):
    for _command in _group.commands.values():
        main.add_command(_command)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(
    config: ServerConfig,
    banner: str,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Build the emulator's app, bind, serve until stopped; each failure is one line, exit 1."""
    from mock_server.app import make_app

    with one_line_errors(also=(CaptureError,)):
        app = make_app(config)
    with one_line_errors(f"cannot listen on {config.host}:{config.port}"):
        sock = bind(config.host, config.port)
    serve_app(app, sock, banner, idle_timeout=idle_timeout, max_connections=max_connections)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind (0 picks a free one).",
)
@click.option(
    "--clock",
    "clock",
    type=click.Choice(ClockMode, case_sensitive=False),
    default=ClockMode.REAL.value,
    show_default=True,
    help="real: wall time. manual: time moves only via POST /__admin/clock/advance.",
)
@click.option(
    "--browser",
    envvar="CAPTURE_REPLAY_BROWSER",
    type=str,
    default=None,
    help="Chromium executable [env CAPTURE_REPLAY_BROWSER]. Default: Playwright's own "
    "Chromium if installed, else chromium / chromium-browser / google-chrome on PATH.",
)
@click.option(
    "--default-ttl",
    default=DEFAULT_TTL_SECONDS,
    show_default=True,
    type=click.IntRange(1, MAX_TTL_SECONDS),
    help="TTL in seconds of a session created without maxTtlSeconds.",
)
@click.option(
    "--max-sessions",
    default=DEFAULT_MAX_SESSIONS,
    show_default=True,
    type=click.IntRange(1),
    help="Active sessions allowed per user; one more gets 429.",
)
@click.option(
    "--users",
    "users_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of userId:secret lines; when given, secrets are checked.",
)
@click.option(
    "--allow-file-urls",
    is_flag=True,
    help="Let goto open file:// URLs (refused by default).",
)
@click.option(
    "--action-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Time budget of one action in seconds; over it the answer is 504.",
)
@click.option(
    "--context-pool",
    default=1,
    show_default=True,
    type=click.IntRange(0, 10),
    help="Ready browser contexts kept for fast session creation.",
)
@click.option(
    "--cassette",
    "cassettes",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Cassette to replay (repeatable).",
)
@click.option(
    "--mode",
    type=click.Choice(Mode, case_sensitive=False),
    default=None,
    help="live: local Chromium. replay: cassettes only, never a browser. hybrid: replay, and "
    "continue a session live from its first miss. [default: replay with --cassette, else live]",
)
@click.option(
    "--match-on",
    "match_on",
    multiple=True,
    help="Matchers for replay (repeatable or comma-separated): method, path, query, body, "
    "action_type. [default: method,path,query,body]",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="JSONPATH",
    help="Dotted JSON path dropped from request bodies before matching, e.g. payload.url "
    "(repeatable).",
)
@click.option(
    "--exhausted",
    type=click.Choice(Exhausted, case_sensitive=False),
    default=Exhausted.REPEAT.value,
    show_default=True,
    help="When a request's recorded answers are used up: repeat the last one, or miss.",
)
@click.option(
    "--latency",
    default="none",
    show_default=True,
    metavar="none|recorded|MS",
    help="Replayed answers: at once, after the recorded duration, or after MS milliseconds.",
)
@click.option(
    "--max-total-sessions",
    default=default_max_total_sessions(),
    show_default=True,
    type=click.IntRange(1),
    help="Live sessions for all users together (this machine's limit: half its memory at "
    "~150 MB a session); one more gets 429.",
)
@click.option(
    "--keep-closed",
    default=DEFAULT_KEEP_CLOSED_SECONDS,
    show_default=True,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="How long (server clock) a closed or expired session stays readable before it is "
    "forgotten.",
)
@click.option(
    "--admin-token",
    envvar="CAPTURE_REPLAY_ADMIN_TOKEN",
    default=None,
    help="Require `Authorization: Bearer TOKEN` on /__admin/ routes [env "
    "CAPTURE_REPLAY_ADMIN_TOKEN]; required when --host is not a loopback address.",
)
@click.option(
    "--cassette-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder POST /__admin/cassettes may load from. [default: the working directory]",
)
@click.option(
    "--idle-timeout",
    default=DEFAULT_IDLE_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="Close a connection that sends no whole request for this long (also an idle "
    "keep-alive one).",
)
@click.option(
    "--max-connections",
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections at most; one more is answered 503 and closed.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log requests and browser events.")
def serve(
    host: str,
    port: int,
    clock: ClockMode,
    browser: str | None,
    default_ttl: int,
    max_sessions: int,
    users_file: Path | None,
    allow_file_urls: bool,
    action_timeout: float,
    context_pool: int,
    cassettes: tuple[Path, ...],
    mode: Mode | None,
    match_on: tuple[str, ...],
    ignore: tuple[str, ...],
    exhausted: Exhausted,
    latency: str,
    max_total_sessions: int,
    keep_closed: float,
    admin_token: str | None,
    cassette_dir: Path | None,
    idle_timeout: float,
    max_connections: int,
    verbose: bool,
) -> None:
    """Run the Capture sessions API locally: live on headless Chromium, or replaying cassettes."""
    from mock_server.browser import find_browser
    from mock_server.replay.matching import parse_matchers

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    users = None
    if users_file is not None:
        with one_line_errors(also=(ValueError,)):
            users = read_users_file(users_file)
    chosen = mode or (Mode.REPLAY if cassettes else Mode.LIVE)
    if chosen is not Mode.LIVE and not cassettes:
        raise click.UsageError(f"--mode {chosen.value} needs at least one --cassette")
    matchers = tuple(m.strip() for item in match_on for m in item.split(",") if m.strip())
    try:
        parse_matchers(matchers)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--match-on") from err
    if not is_loopback_host(host):
        if admin_token is None:
            raise click.UsageError(
                f"--host {host} is not a loopback address: set --admin-token (or "
                "CAPTURE_REPLAY_ADMIN_TOKEN) so that the admin API is not open to the network"
            )
        click.echo(
            f"warning: serving on {host}, reachable from other machines; the API takes any "
            "well-formed token unless --users is given",
            err=True,
        )
    resolved = find_browser(browser)
    if resolved is None and chosen is not Mode.REPLAY:
        click.echo(
            "warning: no Chromium found; sessions will answer 503 until one is installed "
            "(apt-get install -y chromium) or named with --browser / CAPTURE_REPLAY_BROWSER",
            err=True,
        )
    config = ServerConfig(
        host=host,
        port=port,
        clock=clock,
        browser=resolved,
        default_ttl=default_ttl,
        max_sessions=max_sessions,
        users=users,
        allow_file_urls=allow_file_urls,
        action_timeout=action_timeout,
        context_pool=context_pool,
        warm_browser=resolved is not None and chosen is not Mode.REPLAY,
        mode=chosen,
        cassettes=cassettes,
        match_on=matchers,
        ignore=ignore,
        exhausted=exhausted,
        latency=parse_latency(latency),
        max_total_sessions=max_total_sessions,
        keep_closed=keep_closed,
        admin_token=admin_token,
        cassette_dir=cassette_dir.resolve() if cassette_dir else Path.cwd(),
    )
    what = f"{chosen.value}, clock {clock.value}, " + (
        f"cassettes {', '.join(p.name for p in cassettes)}"
        if cassettes
        else f"browser {resolved or 'none'}"
    )
    banner = f"capture-replay {__version__} serving ({what})"
    _serve(config, banner, idle_timeout=idle_timeout, max_connections=max_connections)


def parse_latency(value: str) -> str | float | None:
    if value in ("none", "0"):
        return None
    if value == "recorded":
        return "recorded"
    try:
        ms = float(value)
    except ValueError:
        raise click.BadParameter(
            "expected none, recorded or a number of milliseconds", param_hint="--latency"
        ) from None
    if ms < 0:
        raise click.BadParameter("must be >= 0", param_hint="--latency")
    return ms


# -- record ------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--upstream", default=DEFAULT_UPSTREAM, show_default=True, help="Capture API base URL."
)
@click.option(
    "--cassette",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cassette file to write.",
)
@click.option("--append", is_flag=True, help="Add to an existing cassette.")
@click.option("--overwrite", is_flag=True, help="Replace an existing cassette.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=PROXY_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind (0 picks a free one).",
)
@click.option(
    "--redact-header",
    "redact_headers",
    multiple=True,
    metavar="NAME",
    help="Blank this header's value (repeatable).",
)
@click.option(
    "--redact-json",
    "redact_json",
    multiple=True,
    metavar="PATH",
    help="Blank a dotted path in request JSON bodies, e.g. payload.value (repeatable).",
)
@click.option(
    "--redact-secret",
    "redact_secrets",
    multiple=True,
    metavar="VALUE",
    help="Remove a literal everywhere, raw, base64 or URL-encoded (repeatable).",
)
@click.option(
    "--no-password-rule",
    is_flag=True,
    help="Keep text typed into password/secret/token fields (redacted by default).",
)
@click.option(
    "--connect-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds to connect upstream; over it the client gets 502.",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds for a whole upstream exchange; over it the client gets 504.",
)
@click.option(
    "--shutdown-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds SIGINT/SIGTERM waits for exchanges in flight.",
)
@click.option("--fsync", is_flag=True, help="fsync the cassette after every record.")
@click.option(
    "--record-mode",
    type=click.Choice(
        [RecordMode.ALL, RecordMode.NEW_EPISODES, RecordMode.ONCE], case_sensitive=False
    ),
    default=RecordMode.ALL.value,
    show_default=True,
    help="all: forward everything. new_episodes: answer what the cassette has, forward and "
    "append the rest. once: record if the cassette does not exist, else replay only.",
)
def record(
    upstream: str,
    cassette: Path,
    append: bool,
    overwrite: bool,
    host: str,
    port: int,
    redact_headers: tuple[str, ...],
    redact_json: tuple[str, ...],
    redact_secrets: tuple[str, ...],
    no_password_rule: bool,
    connect_timeout: float,
    timeout: float,
    shutdown_timeout: float,
    fsync: bool,
    record_mode: RecordMode,
) -> None:
    """Record traffic to the Capture API through a local reverse proxy."""
    if append and overwrite:
        raise click.UsageError("--append and --overwrite exclude each other")
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.ClickException(f"--upstream must be an http(s) URL, got {upstream!r}")
    folder = cassette.parent
    if not folder.is_dir():
        state = "is not a directory" if folder.exists() else "does not exist"
        raise click.ClickException(f"{cassette}: the cassette's directory {folder} {state}")
    with one_line_errors():
        existed = cassette.exists()
    plan = plan_recording(record_mode, existed)
    if plan is RecordPlan.REPLAY:
        config = ServerConfig(host=host, port=port, mode=Mode.REPLAY, cassettes=(cassette,))
        _serve(config, f"capture-replay: {cassette} exists (record mode once): replaying only")
        return
    episodes = None
    if plan is RecordPlan.EPISODES:
        from mock_server.replay.episodes import EpisodeReplayer

        episodes = EpisodeReplayer(cassette)
    with one_line_errors():
        rules = RedactionRules(
            headers=frozenset(redact_headers),
            json_paths=redact_json,
            secrets=redact_secrets,
            password_fields=not no_password_rule,
        )
    config = ProxyConfig(
        cassette=cassette,
        upstream=upstream,
        mode=WriteMode.APPEND if append else WriteMode.OVERWRITE if overwrite else WriteMode.NEW,
        redaction=rules,
        connect_timeout=connect_timeout,
        timeout=timeout,
        host=host,
        port=port,
        fsync=fsync,
        shutdown_timeout=shutdown_timeout,
    )
    listening = False

    def ready(url: str) -> None:
        nonlocal listening
        listening = True
        click.echo(f"capture-replay recording {upstream} into {cassette} on {url}", err=True)

    def stopping(in_flight: int) -> None:
        click.echo(f"stopping: finishing {in_flight} exchanges in flight", err=True)

    try:
        if episodes is None:
            serve_proxy(config, on_ready=ready, on_stopping=stopping)
        else:
            run(_record_new_episodes(episodes, config, ready, stopping))
    except KeyboardInterrupt:
        pass
    except (RecorderError, OSError, CaptureError) as err:
        # Before the proxy listens, an OSError naming no file is the bind (or the host's lookup).
        failed_bind = isinstance(err, OSError) and not listening and not err.filename
        doing = f"cannot listen on {host}:{port}" if failed_bind else None
        raise click.ClickException(error_line(err, doing)) from err
    finally:
        if not listening and not existed:
            cassette.unlink(missing_ok=True)  # created by this start-up, holds no exchange


async def _record_new_episodes(
    episodes: EpisodeReplayer,  # imported when the mode needs it
    config: ProxyConfig,
    ready: Callable[[str], None],
    stopping: Callable[[int], None],
) -> None:
    from mock_server.replay.episodes import proxy_config_for

    async with episodes.running():
        await run_proxy(proxy_config_for(config, episodes), on_ready=ready, on_stopping=stopping)


if __name__ == "__main__":
    sys.exit(main())
