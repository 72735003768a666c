"""Record through the real recording proxy in front of a running emulator, for replay tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from mock_server.serving import listen_on_loopback
from recorder.proxy import ProxyConfig, make_proxy_app


@asynccontextmanager
async def recording_proxy(upstream: str, cassette: Path) -> AsyncIterator[str]:
    """A recording proxy on an ephemeral port in front of `upstream`; yields its URL. The
    cassette is closed when the context exits."""
    runner = web.AppRunner(
        make_proxy_app(ProxyConfig(cassette=cassette, upstream=upstream, port=0))
    )
    url = await listen_on_loopback(runner)
    try:
        yield url
    finally:
        await runner.cleanup()
