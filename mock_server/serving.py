"""Running aiohttp apps: from the CLI until SIGINT/SIGTERM (`serve_app`, with uvloop when it is
installed), a coroutine on the same kind of loop (`run`), and in-process on a loopback port
(`listen_on_loopback`, for the pytest plugin, new_episodes and the tests).

`serve_config` builds the emulator's app from a config, binds and serves it (one line and exit 1 on
any failure), and when it replayed, prints a line per cassette of what it never served.
`serve_app` binds the socket itself: a failed bind is told apart from any other
start-up error, and the URL printed is the bound one (port 0 included). It guards the server's
edges: a connection that has not sent a whole request within `idle_timeout` seconds of connecting,
or of its last answer, is closed (aiohttp's keep-alive timer, which also covers a request trickled
in byte by byte); past `max_connections` open connections a new one gets a 503 JSON answer and is
closed at once. That cap is why `web.run_app` is not used: it takes no protocol factory, so this
module serves through aiohttp's public runner API (`AppRunner`, `runner.server`,
`Server.connections`) and `loop.create_server`. Imports no command module; errors go through the
one mapping (`recorder.cli_errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any, TypeVar, cast

import click
from aiohttp import web

from mock_server.config import ServerConfig
from mock_server.errors import CaptureError
from mock_server.json_body import json_bytes
from recorder.cli_errors import one_line_errors

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


DEFAULT_IDLE_TIMEOUT = 15.0
JSON = "application/json"
DEFAULT_MAX_CONNECTIONS = 1024


class _Refusal(asyncio.Protocol):
    """Answers a connection over the cap with a 503 in the contract's error shape, then closes."""

    def __init__(self, limit: int) -> None:
        body = json.dumps(
            {
                "success": False,
                "error": f"This local capture-replay server already has {limit} open "
                "connections, its limit; retry when one closes",
            }
        ).encode()
        # One fixed answer written before any request is read: no HTTP stack is needed for it.
        self.answer = (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)  # uvloop's are not asyncio's classes
        writer.write(self.answer)
        writer.close()


class _JsonErrors(web.RequestHandler):
    """aiohttp's request handler, answering what fails before any route is reached (a request
    line over 8 KB, a bad method, `Content-Length: -1`) in the contract's JSON error shape
    instead of aiohttp's plain text; the connection is closed after it, as aiohttp does."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses once output began
        if status >= 500:
            error = "Internal error"
        else:
            first = (message or HTTPStatus(status).phrase).strip().splitlines()[0].rstrip(":")
            error = f"Bad request: {first[:160]}"
        response = web.Response(
            status=status, body=json_bytes({"success": False, "error": error}), content_type=JSON
        )
        response.force_close()
        return response


def capped(server: web.Server, limit: int) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory: aiohttp's request handler (answering protocol errors in JSON), or a
    refusal past `limit` connections."""

    def factory() -> asyncio.BaseProtocol:
        if len(server.connections) >= limit:
            return _Refusal(limit)
        handler = server()
        # aiohttp's Server builds its own RequestHandler with the runner's settings; the subclass
        # only changes how a protocol error is answered (same slots, no state of its own).
        handler.__class__ = _JsonErrors
        return handler

    return factory


def serve_app(
    app: web.Application,
    sock: socket.socket,
    banner: str,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serve `app` on the bound `sock` until SIGINT/SIGTERM, printing `banner on URL` once
    listening; answers in flight finish, then the app's resources are closed."""
    run(serve_until_stopped(app, sock, banner, idle_timeout, max_connections))


async def serve_until_stopped(
    app: web.Application,
    sock: socket.socket,
    banner: str,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    stop: asyncio.Event | None = None,
) -> None:
    url = url_of(sock)
    stop = stop or asyncio.Event()
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout)
    await runner.setup()
    loop = asyncio.get_running_loop()
    listening = None
    try:
        assert runner.server is not None
        listening = await loop.create_server(capped(runner.server, max_connections), sock=sock)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)
        click.echo(f"{banner} on {url}  (Ctrl-C to stop)", err=True)
        await stop.wait()
        click.echo("stopping…", err=True)
    finally:
        if listening is not None:
            listening.close()
        await runner.cleanup()


def serve_config(
    config: ServerConfig,
    banner: str,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Build the emulator's app, bind, serve until stopped; each failure is one line, exit 1."""
    from mock_server.app import make_app  # the app's heavy imports, only when serving

    with one_line_errors(also=(CaptureError,)):
        app = make_app(config)
    with one_line_errors(f"cannot listen on {config.host}:{config.port}"):
        sock = bind(config.host, config.port)
    serve_app(app, sock, banner, idle_timeout=idle_timeout, max_connections=max_connections)
    from mock_server.state import REPLAY

    engine = app[REPLAY].engine
    for line in engine.player.usage.summary() if engine is not None else ():
        click.echo(f"unused: {line}", err=True)


async def listen_on_loopback(runner: web.AppRunner, port: int = 0) -> str:
    """Set `runner` up and serve it on 127.0.0.1:`port` (0: a free one); return its URL."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    return f"http://{host}:{bound}"
