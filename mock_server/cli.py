"""The `capture-replay` command group: `serve` here, the cassette commands from
`mock_server.cassette_commands`. The only place that reads the environment and argv; it builds
one frozen config and hands it down. Errors become one line on stderr and exit code 1."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from mock_server import __version__, cassette_commands, report_commands
from mock_server.config import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_PORT,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    ClockMode,
    Exhausted,
    Mode,
    ServerConfig,
    read_users_file,
)
from mock_server.errors import CaptureError
from mock_server.matching import parse_matchers
from mock_server.serving import install_uvloop, serve_until_stopped


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capture-replay")
def main() -> None:
    """Record, replay and emulate the Capture browser-sessions API offline."""


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
    type=click.Choice([m.value for m in ClockMode]),
    default="real",
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
    type=click.Choice([m.value for m in Mode]),
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
    type=click.Choice([e.value for e in Exhausted]),
    default="repeat",
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
@click.option("-v", "--verbose", is_flag=True, help="Log requests and browser events.")
def serve(
    host: str,
    port: int,
    clock: str,
    browser: str | None,
    default_ttl: int,
    max_sessions: int,
    users_file: Path | None,
    allow_file_urls: bool,
    action_timeout: float,
    context_pool: int,
    cassettes: tuple[Path, ...],
    mode: str | None,
    match_on: tuple[str, ...],
    ignore: tuple[str, ...],
    exhausted: str,
    latency: str,
    verbose: bool,
) -> None:
    """Run the Capture sessions API locally: live on headless Chromium, or replaying cassettes."""
    from mock_server.api import make_app
    from mock_server.browser import find_browser

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    users = None
    if users_file is not None:
        try:
            users = read_users_file(users_file)
        except (OSError, ValueError) as err:
            raise click.ClickException(str(err)) from err
    chosen = Mode(mode) if mode else (Mode.REPLAY if cassettes else Mode.LIVE)
    if chosen is not Mode.LIVE and not cassettes:
        raise click.UsageError(f"--mode {chosen.value} needs at least one --cassette")
    matchers = tuple(m.strip() for item in match_on for m in item.split(",") if m.strip())
    try:
        parse_matchers(matchers)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--match-on") from err
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
        clock=ClockMode(clock),
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
        exhausted=Exhausted(exhausted),
        latency=parse_latency(latency),
    )
    install_uvloop()
    what = f"{chosen.value}, clock {clock}, " + (
        f"cassettes {', '.join(p.name for p in cassettes)}"
        if cassettes
        else f"browser {resolved or 'none'}"
    )
    try:
        app = make_app(config)
    except CaptureError as err:
        raise click.ClickException(err.message) from err
    banner = f"capture-replay {__version__} serving ({what})"
    try:
        asyncio.run(serve_until_stopped(app, host, port, banner))
    except KeyboardInterrupt:
        pass


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


cassette_commands.register(main)
report_commands.register(main)

if __name__ == "__main__":
    sys.exit(main())
