"""Record the example cassettes shipped in cassettes/examples/.

Each flow runs for real: the bundled test pages (tests/pages.py) are served on
127.0.0.1:8765, `capture-replay serve --clock manual` emulates Capture on local Chromium, and
`capture-replay record` sits in front of it writing the cassette. Re-run after changing a flow:

    .venv/bin/python scripts/record_examples.py
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launch import start_command  # noqa: E402

from mock_server.auth import make_token  # noqa: E402
from mock_server.signing import sign  # noqa: E402
from tests.pages import PageServer  # noqa: E402

PAGES_PORT = 8765
PAGES = f"http://127.0.0.1:{PAGES_PORT}"
OUT = ROOT / "cassettes" / "examples"
TOKEN = make_token("user_123", "secret")
ONESHOT_KEY, ONESHOT_SECRET = "demo", "demo-secret"


class Client:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(self, method: str, path: str, body: object = None) -> dict:
        headers = {"Authorization": TOKEN}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            data = await r.json()
            print(f"  {r.status} {method} {path} {body if isinstance(body, dict) else ''}"[:110])
            return data

    async def act(self, sid: str, action_type: str, payload: dict | None = None) -> dict:
        return await self.call(
            "POST", f"/v1/sessions/{sid}/actions", {"type": action_type, "payload": payload or {}}
        )


async def counter_flow(c: Client) -> None:
    """The README quickstart: create, goto, two clicks, query, screenshot, content, get, close."""
    sid = (await c.call("POST", "/v1/sessions", {"maxTtlSeconds": 300}))["session"]["id"]
    await c.act(sid, "goto", {"url": f"{PAGES}/counter"})
    await c.act(sid, "click", {"selector": "#inc"})
    await c.act(sid, "click", {"selector": "#inc"})
    await c.act(sid, "query", {"selector": "#count"})
    await c.act(sid, "screenshot", {"fullPage": True})
    await c.act(sid, "content", {"format": "text"})
    await c.call("GET", f"/v1/sessions/{sid}")
    await c.call("DELETE", f"/v1/sessions/{sid}")


async def login_flow(c: Client) -> None:
    """A form: the password typed into #password is redacted in the cassette."""
    sid = (await c.call("POST", "/v1/sessions", {}))["session"]["id"]
    await c.act(sid, "goto", {"url": f"{PAGES}/form"})
    await c.act(sid, "fill", {"selector": "#user", "value": "demo"})
    await c.act(sid, "fill", {"selector": "#password", "value": "hunter2"})
    await c.act(sid, "select", {"selector": "#color", "value": "green"})
    await c.act(sid, "check", {"selector": "#agree"})
    await c.act(sid, "click", {"selector": "#submit"})
    await c.act(sid, "query", {"selector": "#out", "fields": ["text"]})
    await c.act(sid, "goto", {"url": f"{PAGES}/form", "waitUntil": "sometime"})  # a 400
    await c.call("DELETE", f"/v1/sessions/{sid}")


async def oneshot_flow(c: Client) -> None:
    """Every one-shot endpoint once, signed as the SDKs sign them."""
    queries = {
        "image": f"vw=800&vh=600&url={quote(PAGES + '/', safe='')}",
        "pdf": f"format=A4&url={quote(PAGES + '/meta', safe='')}",
        "content": f"url={quote(PAGES + '/', safe='')}",
        "metadata": f"url={quote(PAGES + '/meta', safe='')}",
        "animated": f"duration=1&vw=320&vh=240&url={quote(PAGES + '/animated', safe='')}",
    }
    for endpoint, query in queries.items():
        path = f"/{ONESHOT_KEY}/{sign(ONESHOT_SECRET, query)}/{endpoint}?{query}"
        async with c.http.get(c.base + path) as r:
            body = await r.read()
            print(
                f"  {r.status} GET /{ONESHOT_KEY}/…/{endpoint} {r.content_type} {len(body)} bytes"
            )


FLOWS: dict[str, Callable[[Client], Awaitable[None]]] = {
    "counter-flow": counter_flow,
    "login-form": login_flow,
    "oneshot": oneshot_flow,
}


async def main() -> None:
    pages = PageServer()
    await pages.start_on(PAGES_PORT)
    OUT.mkdir(parents=True, exist_ok=True)
    emulator, emulator_url = await start_command("serve", "--port", "0", "--clock", "manual")
    try:
        async with aiohttp.ClientSession() as http:
            for name, flow in FLOWS.items():
                cassette = OUT / f"{name}.msgpack"
                print(f"{cassette.relative_to(ROOT)}")
                recorder, url = await start_command(
                    "record", "--upstream", emulator_url, "--cassette", str(cassette),
                    "--overwrite", "--port", "0",
                )  # fmt: skip
                try:
                    await flow(Client(http, url))
                finally:
                    recorder.terminate()
                    recorder.wait(30)
    finally:
        emulator.terminate()
        emulator.wait(30)
        await pages.stop()


if __name__ == "__main__":
    asyncio.run(main())
