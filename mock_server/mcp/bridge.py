"""One aiohttp request handed to an ASGI application: `serve_asgi(app, request, extra)`.

The official `mcp` package speaks Streamable HTTP as an ASGI application (Starlette); the
emulator is aiohttp. `aiohttp-asgi`'s `ASGIContext` does the translation (the scope, the
response start and body, chunked streaming), with one fix written here: once the request body
is read, its `receive()` answers another empty `http.request` at once, for ever. An ASGI app
calls `receive()` again only to learn of a disconnect, and `sse-starlette` (under every MCP
answer stream) does so in a loop, so that loop would spin without ever yielding to the event
loop. Here `receive()` after the body waits until the response is over instead, as an ASGI
server does for a client that stays connected; a client that goes away is noticed when the
next event cannot be written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from aiohttp_asgi.resource import ASGIContext

Scope = MutableMapping[str, Any]
AsgiApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


class _Context(ASGIContext):
    """`ASGIContext` whose `receive()` waits, once the body is read, instead of spinning."""

    def __init__(self, app: AsgiApp, request: web.Request, extra: dict[str, Any]) -> None:
        super().__init__(app, request, "")
        self._extra = extra
        self._body_sent = False
        self._done = asyncio.Event()

    @property
    def scope(self) -> Any:
        scope = super().scope
        scope.update(self._extra)
        return scope

    async def on_receive(self) -> dict[str, Any]:
        if self._body_sent:
            await self._done.wait()
            return {"type": "http.disconnect"}
        message = await super().on_receive()
        self._body_sent = not message.get("more_body", False)
        return message

    async def get_response(self) -> web.StreamResponse:
        try:
            return await super().get_response()
        finally:
            self._done.set()


async def serve_asgi(
    app: AsgiApp, request: web.Request, extra: dict[str, Any]
) -> web.StreamResponse:
    """Run `app` for `request`; `extra` keys are added to the ASGI scope."""
    return await _Context(app, request, extra).get_response()
