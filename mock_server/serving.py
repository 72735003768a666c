"""Running aiohttp apps: from the CLI until SIGINT/SIGTERM (`serve_app`, on `web.run_app` with
uvloop when it is installed), a coroutine on the same kind of loop (`run`), and in-process on a
loopback port (`listen_on_loopback`, for the pytest plugin, new_episodes and the tests).

`serve_app` binds the socket itself before handing it to `run_app`: a failed bind is told apart
from any other start-up error, and the URL printed is the bound one (port 0 included). Imports no
command module; errors are left to the caller's one mapping (`recorder.cli_errors`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from aiohttp import web

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else asyncio's default one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a loop from `new_event_loop` (no global loop policy is touched)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (0: a free port). Raises `OSError`."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_app(app: web.Application, sock: socket.socket, banner: str) -> None:
    """Serve `app` on the bound `sock` until SIGINT/SIGTERM, printing `banner on URL` once
    listening; answers in flight finish, then the app's resources are closed."""
    url = url_of(sock)

    async def stopping(app: web.Application) -> None:
        click.echo("stopping…", err=True)

    app.on_shutdown.append(stopping)
    web.run_app(
        app,
        sock=sock,
        access_log=None,
        print=lambda _: click.echo(f"{banner} on {url}  (Ctrl-C to stop)", err=True),
        loop=new_event_loop(),
    )


async def listen_on_loopback(runner: web.AppRunner, port: int = 0) -> str:
    """Set `runner` up and serve it on 127.0.0.1:`port` (0: a free one); return its URL."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    return f"http://{host}:{bound}"
