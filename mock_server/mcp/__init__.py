"""Capture's MCP server, offline: `POST/GET/DELETE /mcp/v1` speaking MCP's Streamable HTTP
transport with the official `mcp` package, the eight tools over the emulator's own sessions and
one-shot captures, and replay of recorded MCP sessions.

- `tools`: the eight tools, thin layers over the registry, live runner and one-shot captures
- `bridge`: one aiohttp request handed to the `mcp` package's ASGI application
- `endpoint`: `setup_mcp(app)`: the route (Bearer auth, then replay or the session manager)
  and the session manager's lifetime in `app.cleanup_ctx`

It must not import `mock_server.app` (the app imports it).
"""

from __future__ import annotations

from mock_server.mcp.endpoint import setup_mcp

__all__ = ["setup_mcp"]
