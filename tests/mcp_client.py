"""The official `mcp` Python client over Streamable HTTP, as an agent would use it, for tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from recorder.mcp_tools import MCP_PATH
from tests.emulator import TOKEN


@contextlib.asynccontextmanager
async def mcp_session(base_url: str, token: str = TOKEN) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session on `base_url` + `/mcp/v1`."""
    timeout = httpx2.Timeout(30, read=120)
    async with httpx2.AsyncClient(headers={"Authorization": token}, timeout=timeout) as http:
        async with streamable_http_client(base_url + MCP_PATH, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def json_of(result: Any) -> dict[str, Any]:
    """The JSON of a tool result's first (text) content block."""
    block = result.content[0]
    assert block.type == "text", result
    return json.loads(block.text)


async def call_ok(session: ClientSession, tool: str, arguments: dict[str, Any]) -> Any:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result
    return result


async def call_error(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    return json_of(result)
