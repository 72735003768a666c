"""`--browser-endpoint`: the emulator drives a browser served by Playwright's own `run-server`
(a real process on a free port) instead of launching Chromium; a dropped connection ends the
sessions in `error`, as a crashed browser does, and the next create connects again."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import psutil
import pytest

from mock_server.state import REGISTRY
from tests.cluster.conftest import free_port
from tests.emulator import RunningEmulator, browser_path, emulator_config

pytestmark = pytest.mark.browser


class BrowserServer:
    """`python -m playwright run-server --unsafe` (so it honours the executable path sent)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "playwright",
                "run-server",
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--unsafe",
            ],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        assert b"Listening on" in line, line

    def stop(self) -> None:
        if self.process is None:
            return
        family = psutil.Process(self.process.pid).children(recursive=True)
        self.process.kill()
        self.process.wait()
        for child in family:  # the browsers it launched
            if child.is_running():
                child.kill()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None


async def test_a_whole_session_on_a_playwright_browser_server(pages):
    server = BrowserServer()
    await server.start()
    config = emulator_config(browser_endpoint=server.endpoint, browser=browser_path())
    emulator = await RunningEmulator(config).start()
    try:
        sid = (await emulator.create())["id"]
        await emulator.act(sid, "goto", {"url": pages.url("/counter")})
        await emulator.act(sid, "click", {"selector": "#inc"})
        found = await emulator.act(sid, "query", {"selector": "#count"})
        assert found["elements"][0]["text"] == "1"
        shot = await emulator.act(sid, "screenshot", {})
        assert shot["bodyBase64"]
        closed = await emulator.close(sid)
        assert closed["status"] == "closed" and closed["actionCount"] == 4

        idle = (await emulator.create())["id"]
        await emulator.act(idle, "goto", {"url": pages.url("/counter")})
        disconnected = asyncio.Event()
        page = emulator.app[REGISTRY].get(idle, "user_123").page
        page.context.browser.on("disconnected", lambda _: disconnected.set())
        server.stop()  # the connection drops: like a crashed browser
        await asyncio.wait_for(disconnected.wait(), 10)
        gone = await emulator.act(idle, "title", expect=503)
        assert gone["session"]["status"] == "error" and gone["session"]["billedCredits"] == 1
        assert (await emulator.get(idle))["status"] == "error"
        await emulator.act(idle, "title", expect=409)
        await server.start()
        again = (await emulator.create())["id"]
        answer = await emulator.act(again, "goto", {"url": pages.url("/form")})
        assert answer["title"] == "Login form"
    finally:
        await emulator.stop()
        server.stop()


async def test_an_unreachable_browser_server_is_503(pages):
    config = emulator_config(browser_endpoint=f"ws://127.0.0.1:{free_port()}/")
    emulator = await RunningEmulator(config).start()
    try:
        status, body = await emulator.call("POST", "/v1/sessions", {})
        assert status == 503 and "browser server" in body["error"], body
    finally:
        await emulator.stop()
