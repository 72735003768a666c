"""CDP sessions as Capture hands them out, on real Chromium and the manual clock: the connectUrl
is `ws://<host>:<port>/cdp?token=…` on the emulator's own port, minted fresh per create and GET,
relayed to the session's browser (Playwright's connect_over_cdp and Puppeteer's connect both
work); a token opens connections only within --cdp-token-ttl seconds of being minted, an open
connection lives until the session ends (close, expiry, a crash), and every refusal is a 401 JSON
answer before any upgrade."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import psutil
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from mock_server.auth import make_token
from mock_server.cdp import CDP_GATE, INVALID_TOKEN, MISSING_TOKEN
from mock_server.state import REGISTRY
from tests.contract.schemas import validate
from tests.emulator import RunningEmulator, emulator_config
from tests.replay import recording_proxy

pytestmark = pytest.mark.browser

JS = Path(__file__).resolve().parents[1] / "js"
CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """A WebSocket upgrade request to `url` that is expected to be refused: status and JSON."""
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        **(headers or {}),
    }
    async with aiohttp.ClientSession() as http:
        async with http.get(url.replace("ws://", "http://", 1), headers=upgrade) as resp:
            assert resp.content_type == "application/json", await resp.text()
            body = await resp.json()
    validate(body, "ErrorResponse")
    return resp.status, body


class RawCdp:
    """A plain CDP client on one WebSocket: enough to see that the relay answers and closes."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws, self.next_id = http, ws, 0

    @classmethod
    async def open(cls, url: str, **kwargs: object) -> RawCdp:
        http = aiohttp.ClientSession()
        try:
            return cls(http, await http.ws_connect(url, max_msg_size=0, **kwargs))
        except BaseException:
            await http.close()
            raise

    async def call(
        self, method: str, params: dict | None = None, session: str | None = None
    ) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        async with asyncio.timeout(10):
            while True:
                message = await self.ws.receive()
                assert message.type is aiohttp.WSMsgType.TEXT, message
                data = json.loads(message.data)
                if data.get("id") == self.next_id:
                    return data

    async def closed_by_server(self) -> bool:
        """True once the server closes the connection (waits at most 10 s)."""
        async with asyncio.timeout(10):
            while True:
                message = await self.ws.receive()
                if message.type in CLOSED:
                    return True

    async def aclose(self) -> None:
        await self.ws.close()
        await self.http.close()


@pytest.fixture
async def cdp_emulator() -> AsyncIterator[RunningEmulator]:
    running = await RunningEmulator(emulator_config(users=None)).start()
    yield running
    await running.stop()


async def test_connect_url_is_the_emulators_own_port_with_a_fresh_token_per_answer(
    cdp_emulator: RunningEmulator,
):
    port = urlsplit(cdp_emulator.url).port
    created = await cdp_emulator.create({"cdp": True})
    url = created["connectUrl"]
    assert url.startswith(f"ws://127.0.0.1:{port}/cdp?token=")
    again = (await cdp_emulator.get(created["id"]))["connectUrl"]
    third = (await cdp_emulator.get(created["id"]))["connectUrl"]
    assert len({token_of(url), token_of(again), token_of(third)}) == 3
    # The host the client used.
    status, body = await cdp_emulator.call(
        "GET", f"/v1/sessions/{created['id']}", headers={"Host": f"localhost:{port}"}
    )
    assert status == 200
    assert body["session"]["connectUrl"].startswith(f"ws://localhost:{port}/cdp?token=")
    closed = await cdp_emulator.close(created["id"])
    assert "connectUrl" not in closed
    assert "connectUrl" not in await cdp_emulator.get(created["id"])
    plain = await cdp_emulator.create({})
    assert "connectUrl" not in plain and "connectUrl" not in await cdp_emulator.get(plain["id"])


async def test_playwright_connect_over_cdp_drives_the_sessions_browser(cdp_emulator, pages):
    created = await cdp_emulator.create({"cdp": True})
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(created["connectUrl"])
        page = browser.contexts[0].pages[0]
        await page.goto(pages.url("/form"))
        assert await page.title() == "Login form"
        # The same browser the session's actions drive.
        assert (await cdp_emulator.act(created["id"], "title"))["title"] == "Login form"
        await browser.close()
    # A CDP client that disconnects does not end the session (SESS-DOC).
    again = await cdp_emulator.get(created["id"])
    assert again["status"] == "active" and again["connectUrl"] != created["connectUrl"]
    assert (await cdp_emulator.act(created["id"], "title"))["title"] == "Login form"


async def test_puppeteer_connects_through_the_emulator(cdp_emulator, pages):
    if shutil.which("node") is None or not (JS / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("Puppeteer is not installed: run scripts/dev setup (npm ci in tests/js)")
    created = await cdp_emulator.create({"cdp": True})
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "puppeteer_connect.mjs"),
        created["connectUrl"],
        pages.url("/counter"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    answer = json.loads(out.decode().strip().splitlines()[-1])
    assert answer["title"] == "Counter" and answer["url"] == pages.url("/counter")
    assert (await cdp_emulator.act(created["id"], "url"))["url"] == pages.url("/counter")


async def test_a_token_opens_connections_only_within_its_ttl_on_the_server_clock(cdp_emulator):
    sid = (created := await cdp_emulator.create({"cdp": True, "maxTtlSeconds": 600}))["id"]
    first = created["connectUrl"]
    early = await RawCdp.open(first)
    try:
        assert (await early.call("Browser.getVersion"))["result"]["protocolVersion"]
        await cdp_emulator.advance(61)
        status, body = await refusal(first)
        assert status == 401 and body["error"].startswith("CDP token expired")
        fresh = (await cdp_emulator.get(sid))["connectUrl"]
        late = await RawCdp.open(fresh)
        try:
            # The connection opened before the first token went stale is still served.
            assert (await early.call("Browser.getVersion"))["result"]
            assert (await late.call("Target.getTargets"))["result"]["targetInfos"]
            await cdp_emulator.advance(60)  # exactly the TTL: still within it
            await (await RawCdp.open(fresh)).aclose()
            await cdp_emulator.advance(1)
            status, _ = await refusal(fresh)
            assert status == 401
            assert (await late.call("Browser.getVersion"))["result"]
        finally:
            await late.aclose()
    finally:
        await early.aclose()


async def test_a_ttl_flag_other_than_the_default_is_honoured(pages):
    running = await RunningEmulator(emulator_config(cdp_token_ttl=5)).start()
    try:
        url = (await running.create({"cdp": True}))["connectUrl"]
        await running.advance(6)
        status, body = await refusal(url)
        assert status == 401 and "within 5 s" in body["error"]
    finally:
        await running.stop()


async def test_close_and_expiry_close_every_cdp_connection_of_the_session(cdp_emulator):
    closing = await cdp_emulator.create({"cdp": True, "maxTtlSeconds": 600})
    expiring = await cdp_emulator.create({"cdp": True, "maxTtlSeconds": 30})
    links = [
        await RawCdp.open(closing["connectUrl"]),
        await RawCdp.open((await cdp_emulator.get(closing["id"]))["connectUrl"]),
    ]
    other = await RawCdp.open(expiring["connectUrl"])
    try:
        for link in (*links, other):
            assert (await link.call("Browser.getVersion"))["result"]
        gate = cdp_emulator.app[CDP_GATE]
        assert gate.links(closing["id"]) == 2 and gate.links(expiring["id"]) == 1
        await cdp_emulator.close(closing["id"])
        for link in links:
            assert await link.closed_by_server()
        assert (await other.call("Browser.getVersion"))["result"]  # another session's stays
        await cdp_emulator.advance(31)
        assert await other.closed_by_server()
        assert gate.links(closing["id"]) == gate.links(expiring["id"]) == 0
        status, body = await refusal(closing["connectUrl"])
        assert status == 401 and body["error"] == INVALID_TOKEN
    finally:
        for link in (*links, other):
            await link.aclose()


async def test_messages_of_many_megabytes_pass_both_ways(cdp_emulator, pages):
    created = await cdp_emulator.create({"cdp": True})
    await cdp_emulator.act(created["id"], "goto", {"url": pages.url("/")})
    link = await RawCdp.open(created["connectUrl"])
    try:
        targets = (await link.call("Target.getTargets"))["result"]["targetInfos"]
        target = next(t for t in targets if t["type"] == "page")
        attached = await link.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session = attached["result"]["sessionId"]
        big = 12 * 1024 * 1024  # three times aiohttp's default message limit
        sent = await link.call(
            "Runtime.evaluate",
            {"expression": f"'{'y' * big}'.length", "returnByValue": True},
            session,
        )
        assert sent["result"]["result"]["value"] == big
        received = await link.call(
            "Runtime.evaluate",
            {"expression": f"'x'.repeat({big})", "returnByValue": True},
            session,
        )
        assert len(received["result"]["result"]["value"]) == big
    finally:
        await link.aclose()


async def test_stopping_the_server_closes_open_cdp_connections_at_once():
    running = await RunningEmulator(emulator_config()).start()
    stopped = False
    try:
        link = await RawCdp.open((await running.create({"cdp": True}))["connectUrl"])
        try:
            assert (await link.call("Browser.getVersion"))["result"]
            async with asyncio.timeout(15):  # aiohttp would otherwise wait 60 s for the relay
                await running.stop()
            stopped = True
            assert await link.closed_by_server()
        finally:
            await link.aclose()
    finally:
        if not stopped:
            await running.stop()


async def test_a_crashed_browser_closes_its_cdp_connections(cdp_emulator):
    created = await cdp_emulator.create({"cdp": True})
    link = await RawCdp.open(created["connectUrl"])
    try:
        assert (await link.call("Browser.getVersion"))["result"]
        page = cdp_emulator.app[REGISTRY].find_active(created["id"]).page
        port = urlsplit(page.devtools_url).port
        browser = [
            p
            for p in psutil.Process().children(recursive=True)
            if any(c.laddr.port == port for c in p.net_connections("tcp"))
        ]
        assert len(browser) == 1, browser
        os.kill(browser[0].pid, signal.SIGKILL)
        assert await link.closed_by_server()
    finally:
        await link.aclose()


async def test_refusals_are_401_json_before_the_upgrade(cdp_emulator):
    created = await cdp_emulator.create({"cdp": True})
    url = created["connectUrl"]
    base = url.split("?", 1)[0]
    cases = [
        (base, None, MISSING_TOKEN),
        (base + "?token=", None, MISSING_TOKEN),
        (base + "?token=" + token_of(url)[:-2] + "xx", None, INVALID_TOKEN),
        (base + "?token=v1.example", None, INVALID_TOKEN),
        (url, {"Authorization": make_token("someone_else", "secret")}, INVALID_TOKEN),
        (url, {"Authorization": "Bearer not-base64!"}, None),
    ]
    for target, headers, error in cases:
        status, body = await refusal(target, headers)
        assert status == 401, (target, body)
        if error is not None:
            assert body["error"] == error
    # The session's own user may send its Bearer along.
    own = await RawCdp.open(url, headers={"Authorization": make_token("user_123", "secret")})
    await own.aclose()
    # A CDP client is refused the same way.
    async with async_playwright() as pw:
        with pytest.raises(PlaywrightError, match="401"):
            await pw.chromium.connect_over_cdp(base + "?token=forged", timeout=10_000)
    # Not a WebSocket request at all: 400.
    status, body = await cdp_emulator.call("GET", urlsplit(url).path + "?" + urlsplit(url).query)
    assert status == 400 and "WebSocket" in body["error"]


async def test_another_users_bearer_is_refused_with_a_users_table():
    running = await RunningEmulator(
        emulator_config(users={"user_123": ("secret",), "mallory": ("hers",)})
    ).start()
    try:
        url = (await running.create({"cdp": True}))["connectUrl"]
        for token in (make_token("mallory", "hers"), make_token("user_123", "wrong")):
            status, _ = await refusal(url, {"Authorization": token})
            assert status == 401
        await (await RawCdp.open(url)).aclose()
    finally:
        await running.stop()


async def test_recorded_cdp_sessions_keep_no_token(cdp_emulator, tmp_path):
    cassette = tmp_path / "cdp.msgpack"
    async with recording_proxy(cdp_emulator.url, cassette) as url:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": make_token("user_123", "secret")}
            async with http.post(url + "/v1/sessions", json={"cdp": True}, headers=headers) as r:
                created = (await r.json())["session"]
            async with http.get(url + f"/v1/sessions/{created['id']}", headers=headers) as r:
                fetched = (await r.json())["session"]
    tokens = [token_of(created["connectUrl"]), token_of(fetched["connectUrl"])]
    # The proxy hands the client the emulator's own URL, which works.
    await (await RawCdp.open(fetched["connectUrl"])).aclose()
    raw = cassette.read_bytes()
    for token in tokens:
        assert token.encode() not in raw
    assert b"/cdp?token=<redacted>" in raw


async def test_admin_sessions_show_open_cdp_connections_and_never_a_token(cdp_emulator):
    """`GET /__admin/sessions` lists a CDP session's open connections (is my client attached?)
    but no connectUrl: a token is a credential, minted only for its owner's create or GET."""
    created = await cdp_emulator.create({"cdp": True})
    plain = await cdp_emulator.create({})

    async def listed() -> dict[str, dict]:
        status, body = await cdp_emulator.call("GET", "/__admin/sessions", token=None)
        assert status == 200
        return {s["id"]: s for s in body["sessions"]}

    assert (await listed())[created["id"]]["cdpConnections"] == 0
    link = await RawCdp.open(created["connectUrl"])
    try:
        found = await listed()
        assert found[created["id"]]["cdpConnections"] == 1
        assert "cdpConnections" not in found[plain["id"]]
        assert "connectUrl" not in found[created["id"]]
        assert token_of(created["connectUrl"]) not in json.dumps(found)
        await cdp_emulator.close(created["id"])
        assert await link.closed_by_server()
        assert (await listed())[created["id"]]["cdpConnections"] == 0
    finally:
        await link.aclose()
