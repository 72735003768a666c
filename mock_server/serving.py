"""Running an aiohttp app from the CLI: uvloop when available, the listening URL printed once
bound, and a clean stop on SIGINT/SIGTERM (answers in flight finish, resources are closed)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click
from aiohttp import web


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


async def listen_on_loopback(runner: web.AppRunner, port: int = 0) -> str:
    """Set `runner` up and serve it on 127.0.0.1:`port` (0: a free one); return its URL."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    return f"http://{host}:{bound}"
