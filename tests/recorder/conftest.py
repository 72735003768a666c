"""Fixtures of the recorder tests: a fake Capture upstream that records what it received, and a
recording proxy in front of it, both on real sockets on ephemeral ports."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import web

from mock_server.serving import listen_on_loopback
from recorder.proxy import ProxyConfig, run_proxy

USER, SECRET = "user_123", "s3cr3t-value"
TOKEN = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIG_SIZE = 30 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class FakeUpstream:
    """A small Capture-like upstream. `received` lists every request; `/slow` waits on an event
    that only teardown sets; `/echo-secret` leaks the caller's token in its answer."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self.big = random.Random(7).randbytes(BIG_SIZE)
        self.gzipped = gzip.compress(b'{"success": true, "text": "' + b"z" * 5000 + b'"}')
        self._next_session = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        self.url = ""

    async def start(self) -> None:
        self.url = await listen_on_loopback(self.runner)

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            Received(request.method, request.raw_path, tuple(request.headers.items()), body)
        )
        path = request.path
        if path == "/slow":
            self.arrived.set()
            await self.release.wait()
            return web.json_response({"success": True, "late": True})
        if path == "/big":
            return web.Response(body=self.big, content_type="image/png")
        if path == "/upload":
            return web.Response(body=body, content_type="application/octet-stream")
        if path == "/gzip":
            return web.Response(
                body=self.gzipped,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if path == "/hop":
            resp = web.Response(
                status=203,
                reason="Odd Reason",
                body=b"hop",
                headers={"Keep-Alive": "timeout=5", "X-Custom": "kept", "Upgrade": "h2c"},
            )
            resp.headers.add("X-Dup", "a")
            resp.headers.add("X-Dup", "b")
            resp.headers["Connection"] = "X-Private"
            resp.headers["X-Private"] = "dropped"
            return resp
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return web.json_response({"success": code < 400, "error": "as asked"}, status=code)
        if path == "/echo-secret":
            auth = request.headers.get("Authorization", "")
            return web.json_response({"success": True, "youSent": auth, "token": auth[7:]})
        if path == "/v1/sessions" and request.method == "POST":
            self._next_session += 1
            sid = f"sess_{self._next_session:04d}"
            return web.json_response(
                {"success": True, "session": {"id": sid, "status": "active", "maxTtlSeconds": 300}},
                status=201,
            )
        if path.startswith("/v1/sessions/") and path.endswith("/actions"):
            data = json.loads(body or b"{}")
            return web.json_response(
                {"success": True, "expiresInSeconds": 290, "type": data.get("type")}
            )
        return web.json_response(
            {
                "success": True,
                "method": request.method,
                "target": request.raw_path,
                "size": len(body),
            }
        )


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    server = FakeUpstream()
    await server.start()
    yield server
    await server.stop()


@asynccontextmanager
async def running_proxy(config: ProxyConfig) -> AsyncIterator[str]:
    """Run `run_proxy` in a task on an ephemeral port; yields its base URL; stops it after."""
    config = replace(config, port=0)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_proxy(config, on_ready=ready.set_result, stop=stop, handle_signals=False)
    )
    try:
        done, _ = await asyncio.wait({ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # re-raise the start-up error
        yield await asyncio.wait_for(ready, 1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@pytest.fixture
def cassette_path(tmp_path: Path) -> Path:
    return tmp_path / "rec.cassette"
