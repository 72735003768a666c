"""`/mcp/v1` on the emulator: `setup_mcp(app)` registers the route and the MCP server's lifetime.

Every request is authenticated first, as the REST routes do (401 JSON in the contract's shape
without a good Bearer token). When the replay engine holds recorded MCP sessions, the request
is answered from them (`mock_server.replay.mcp`); otherwise it goes to the `mcp` package's
`StreamableHTTPSessionManager` (stateful: `Mcp-Session-Id`, answers as `text/event-stream`, the
GET stream for server messages, DELETE to end a session) through `mock_server.mcp.bridge`.

The manager's `run()` is entered in `app.cleanup_ctx`, in a task of its own: it holds an anyio
task group, which must be left by the task that entered it, and aiohttp may start and clean up
an app from different tasks. It is stopped in `on_shutdown`, before aiohttp waits for open
connections, so that open GET streams end at once rather than holding the shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types
from aiohttp import web
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from mock_server.auth import authenticate
from mock_server.faults import FAULT_SOURCE, tool_fault
from mock_server.http import REPLAY_HEADER
from mock_server.mcp.bridge import serve_asgi
from mock_server.mcp.tools import TOOLS, Caller, ToolError, call_tool
from mock_server.mcp.warnings import replay_refusal, warning_blocks
from mock_server.replay.mcp import McpReplayer
from mock_server.state import CONFIG, REPLAY, SOURCE
from recorder import __version__
from recorder.mcp_tools import MCP_PATH, rest_call

_USER = "capture.user"
_REQUEST = "capture.request"


class McpService:
    """The MCP server and its session manager, for one app."""

    def __init__(self) -> None:
        self.server: Server[Any] = Server(
            "capture-replay",
            version=__version__,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.manager = StreamableHTTPSessionManager(self.server)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        assert ctx.request is not None, "tools are called over HTTP"
        scope = ctx.request.scope
        caller = Caller(user=scope[_USER], request=scope[_REQUEST])
        try:
            content = await call_tool(caller, params.name, params.arguments)
        except ToolError as err:
            text = types.TextContent(text=json.dumps(err.body, ensure_ascii=False))
            return types.CallToolResult(
                content=[text, *warning_blocks(err.findings)], is_error=True
            )
        return types.CallToolResult(content=content)

    async def start(self) -> None:
        ready = asyncio.Event()

        async def run() -> None:
            async with self.manager.run():
                ready.set()
                await self._stop.wait()

        self._task = asyncio.create_task(run())
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # raises why the manager could not start

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        user = authenticate(request.headers.get("Authorization"), request.app[CONFIG].users)
        engine = request.app[REPLAY].engine
        replayer = engine.mcp if engine is not None else None
        if replayer is not None:
            body = await request.read()
            faulted = await _replayed_fault(request, replayer, user, body)
            if faulted is not None:
                return faulted
            status, headers, answer = replayer.answer(
                request.method, tuple(request.headers.items()), body
            )
            request[SOURCE] = replayer.source
            return web.Response(status=status, headers=headers, body=answer)
        extra = {_USER: user, _REQUEST: request}
        return await serve_asgi(self.manager.handle_request, request, extra)


async def _replayed_fault(
    request: web.Request, replayer: McpReplayer, user: str, body: bytes
) -> web.Response | None:
    """A fault rule firing on a replayed tool call, or else strict mode refusing its findings,
    before the recording is consulted (its cursor does not move); None when neither answers."""
    asked = replayer.tool_call_in(body)
    if asked is None:
        return None
    rpc_id, tool, arguments = asked
    fault = await tool_fault(request, rest_call(tool, arguments, user), user)
    if fault is None:
        refusal = replay_refusal(request, tool, arguments, user)
        if refusal is None:
            return None
        status, headers, answer = replayer.tool_error(rpc_id, refusal)
        return web.Response(status=status, headers=headers, body=answer)
    if fault.status is None:
        return web.Response(status=500)  # the connection is closed: never sent
    status, headers, answer = replayer.tool_error(rpc_id, ToolError.of_fault(fault).body)
    return web.Response(
        status=status, headers=[*headers, (REPLAY_HEADER, FAULT_SOURCE)], body=answer
    )


MCP_SERVICE = web.AppKey("capture_mcp", McpService)


def setup_mcp(app: web.Application) -> None:
    """Serve MCP at `/mcp/v1` (POST, GET, DELETE)."""
    service = app[MCP_SERVICE] = McpService()

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    async def on_shutdown(_: web.Application) -> None:
        await service.stop()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(on_shutdown)
    for method in ("POST", "GET", "DELETE"):
        app.router.add_route(method, MCP_PATH, service.handle)
