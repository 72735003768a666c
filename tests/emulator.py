"""A running emulator for tests: `make_app` on an ephemeral 127.0.0.1 port with a real
browser, plus a client that speaks the API and validates every answer against the contract."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from mock_server.app import make_app
from mock_server.auth import make_token
from mock_server.browser import find_browser
from mock_server.config import ClockMode, ServerConfig
from mock_server.serving import listen_on_loopback
from tests.contract.schemas import action_schema, validate

TOKEN = make_token("user_123", "secret")


def browser_path() -> str:
    path = find_browser(os.environ.get("CAPTURE_REPLAY_BROWSER"))
    if path is None:
        raise RuntimeError("no Chromium found: run `apt-get install -y chromium` (see README)")
    return path


def emulator_config(**overrides: Any) -> ServerConfig:
    base = ServerConfig(port=0, clock=ClockMode.MANUAL, browser=browser_path(), context_pool=1)
    return replace(base, **overrides)


class ApiClient:
    """Speaks the Capture API to `url` and validates every answer against the contract."""

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.http: aiohttp.ClientSession | None = None
        self.last_headers: dict[str, str] = {}
        self.last_raw = b""

    async def open(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def __aenter__(self) -> ApiClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = TOKEN,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        assert self.http is not None
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = token
        data: Any = io.BytesIO(raw) if raw is not None and len(raw) > 1 << 20 else raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.url + path, data=data, headers=hdrs) as resp:
            assert resp.content_type == "application/json", await resp.text()
            self.last_headers = dict(resp.headers)
            self.last_raw = await resp.read()
            return resp.status, json.loads(self.last_raw)

    async def create(self, body: Any = None, *, token: str = TOKEN) -> dict[str, Any]:
        status, data = await self.call("POST", "/v1/sessions", body, token=token)
        assert status == 201, data
        validate(data, "CreateSessionResponse")
        return data["session"]

    async def act(
        self,
        session_id: str,
        action_type: str,
        payload: dict[str, Any] | None = None,
        *,
        expect: int = 200,
        token: str = TOKEN,
    ) -> dict[str, Any]:
        status, data = await self.call(
            "POST",
            f"/v1/sessions/{session_id}/actions",
            {"type": action_type, "payload": payload or {}},
            token=token,
        )
        assert status == expect, data
        if status == 200:
            validate(data, action_schema(action_type))
        elif status == 409:
            validate(data, "InactiveSessionActionResponse")
        else:
            validate(data, "ActionErrorResponse")
        assert isinstance(data.get("expiresInSeconds"), int), data
        return data

    async def get(self, session_id: str, *, token: str = TOKEN) -> dict[str, Any]:
        status, data = await self.call("GET", f"/v1/sessions/{session_id}", token=token)
        assert status == 200, data
        validate(data, "GetSessionResponse")
        return data["session"]

    async def close(self, session_id: str, *, token: str = TOKEN) -> dict[str, Any]:
        status, data = await self.call("DELETE", f"/v1/sessions/{session_id}", token=token)
        assert status == 200, data
        validate(data, "GetSessionResponse")
        return data["session"]

    async def advance(self, seconds: float) -> None:
        status, data = await self.call(
            "POST", "/__admin/clock/advance", {"seconds": seconds}, token=None
        )
        assert status == 200, data


class RunningEmulator(ApiClient):
    """The app on a real socket, and a client for it."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__()
        self.config = config
        self.app = make_app(config)
        self._runner = web.AppRunner(self.app, access_log=None)

    async def start(self) -> RunningEmulator:
        self.url = await listen_on_loopback(self._runner)
        await self.open()
        return self

    async def stop(self) -> None:
        await self.aclose()
        await self._runner.cleanup()
