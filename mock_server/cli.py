"""The `capture-replay` command group: `serve` here, the cassette commands from
`mock_server.cassette_commands`. The only place that reads the environment and argv; it builds
one frozen config and hands it down. Errors become one line on stderr and exit code 1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import click
from aiohttp import web

from mock_server import __version__
from mock_server.config import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_PORT,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    ClockMode,
    ServerConfig,
    read_users_file,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capture-replay")
def main() -> None:
    """Record, replay and emulate the Capture browser-sessions API offline."""


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve_until_stopped(app: web.Application, host: str, port: int, banner: str) -> None:
    """Run `app` until SIGINT/SIGTERM; print the listening URL once bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as err:
            raise click.ClickException(f"cannot listen on {host}:{port}: {err.strerror}") from err
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        click.echo(f"{banner} on http://{bound[0]}:{bound[1]}  (Ctrl-C to stop)", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        click.echo("stopping…", err=True)
    finally:
        await runner.cleanup()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
    help="Port to bind (0 picks a free one).",
)
@click.option(
    "--clock", "clock", type=click.Choice([m.value for m in ClockMode]), default="real",
    show_default=True,
    help="real: wall time. manual: time moves only via POST /__admin/clock/advance.",
)
@click.option(
    "--browser", envvar="CAPTURE_REPLAY_BROWSER", type=str, default=None,
    help="Chromium executable [env CAPTURE_REPLAY_BROWSER]. Default: Playwright's own "
    "Chromium if installed, else chromium / chromium-browser / google-chrome on PATH.",
)
@click.option(
    "--default-ttl", default=DEFAULT_TTL_SECONDS, show_default=True,
    type=click.IntRange(1, MAX_TTL_SECONDS),
    help="TTL in seconds of a session created without maxTtlSeconds.",
)
@click.option(
    "--max-sessions", default=DEFAULT_MAX_SESSIONS, show_default=True, type=click.IntRange(1),
    help="Active sessions allowed per user; one more gets 429.",
)
@click.option(
    "--users", "users_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of userId:secret lines; when given, secrets are checked.",
)
@click.option(
    "--allow-file-urls", is_flag=True, help="Let goto open file:// URLs (refused by default).",
)
@click.option(
    "--action-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
    help="Time budget of one action in seconds; over it the answer is 504.",
)
@click.option(
    "--context-pool", default=2, show_default=True, type=click.IntRange(0, 10),
    help="Ready browser contexts kept for fast session creation.",
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
    verbose: bool,
) -> None:
    """Run the Capture sessions API locally on headless Chromium."""
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
    resolved = find_browser(browser)
    if resolved is None:
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
        warm_browser=resolved is not None,
    )
    install_uvloop()
    banner = f"capture-replay {__version__} serving (live, clock {clock}, browser {resolved or 'none'})"
    try:
        asyncio.run(serve_until_stopped(make_app(config), host, port, banner))
    except KeyboardInterrupt:
        pass


def _register_cassette_commands() -> None:
    try:
        from mock_server import cassette_commands
    except ImportError:  # TEMPORARY while the module is being written
        return
    cassette_commands.register(main)


_register_cassette_commands()

if __name__ == "__main__":
    sys.exit(main())
