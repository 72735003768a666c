"""The example cassettes in cassettes/examples/ replay as the README says: offline, with no
browser, through curl-shaped requests and the official SDK (sessions and one-shot URLs)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from capture import Capture

from mock_server.config import Mode
from mock_server.state import BROWSER
from recorder.cassette import open_cassette
from tests.emulator import RunningEmulator, emulator_config

EXAMPLES = Path(__file__).resolve().parents[2] / "cassettes" / "examples"
PAGES = "http://127.0.0.1:8765"  # where scripts/record_examples.py served the pages


async def replaying(name: str, **overrides) -> RunningEmulator:
    config = emulator_config(mode=Mode.REPLAY, cassettes=(EXAMPLES / name,), **overrides)
    return await RunningEmulator(config).start()


def assert_no_browser(server: RunningEmulator) -> None:
    browser = server.app[BROWSER]
    assert browser.launched is False and browser.browser_pids() == []


async def test_counter_flow_replays_the_readme_quickstart():
    server = await replaying("counter-flow.msgpack")
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        assert (await server.act(sid, "goto", {"url": f"{PAGES}/counter"}))[
            "url"
        ] == f"{PAGES}/counter"
        await server.act(sid, "click", {"selector": "#inc"})
        await server.act(sid, "click", {"selector": "#inc"})
        assert (await server.act(sid, "query", {"selector": "#count"}))["elements"][0][
            "text"
        ] == "2"
        shot = await server.act(sid, "screenshot", {"fullPage": True})
        assert base64.b64decode(shot["bodyBase64"]).startswith(b"\x89PNG")
        closed = await server.close(sid)
        assert closed["status"] == "closed" and closed["billedCredits"] == 1
        assert_no_browser(server)
    finally:
        await server.stop()


async def test_login_form_replays_with_the_typed_password_ignored():
    with open_cassette(EXAMPLES / "login-form.msgpack") as cassette:
        raw = (EXAMPLES / "login-form.msgpack").read_bytes()
        assert b"hunter2" not in raw and len(cassette.entries) == 10
    server = await replaying("login-form.msgpack", ignore=("payload.value",))
    try:
        sid = (await server.create({}))["id"]
        await server.act(sid, "goto", {"url": f"{PAGES}/form"})
        await server.act(sid, "fill", {"selector": "#user", "value": "demo"})
        await server.act(sid, "fill", {"selector": "#password", "value": "any password at all"})
        await server.act(sid, "click", {"selector": "#submit"})
        out = await server.act(sid, "query", {"selector": "#out", "fields": ["text"]})
        assert out["elements"][0]["text"] == "submitted:demo"
        assert_no_browser(server)
    finally:
        await server.stop()


@pytest.fixture
async def oneshot_sdk(monkeypatch):
    server = await replaying("oneshot.msgpack")
    monkeypatch.setattr(Capture, "EDGE_URL", server.url)
    yield Capture("demo", "any-secret", {"useEdge": True}), server
    await server.stop()


async def test_oneshot_endpoints_replay_through_the_sdk_without_a_browser(oneshot_sdk):
    sdk, server = oneshot_sdk
    with open_cassette(EXAMPLES / "oneshot.msgpack") as cassette:
        recorded = {
            e.path.rsplit("/", 1)[1]: cassette.load(e).response.body for e in cassette.entries
        }
    assert await sdk.fetch_image(f"{PAGES}/", {"vw": 800, "vh": 600}) == recorded["image"]
    pdf = await sdk.fetch_pdf(f"{PAGES}/meta", {"format": "A4"})
    assert pdf.startswith(b"%PDF") and pdf == recorded["pdf"]
    content = await sdk.fetch_content(f"{PAGES}/")
    assert content["success"] is True and "Hello from the test index" in content["textContent"]
    metadata = await sdk.fetch_metadata(f"{PAGES}/meta")
    assert metadata["metadata"]["author"] == "Ada Lovelace"
    gif = await sdk.fetch_animated(f"{PAGES}/animated", {"duration": 1, "vw": 320, "vh": 240})
    assert gif.startswith(b"GIF8") and gif == recorded["animated"]
    assert_no_browser(server)


async def test_an_unrecorded_oneshot_is_a_miss(oneshot_sdk):
    sdk, server = oneshot_sdk
    import aiohttp
    from yarl import URL

    async with aiohttp.ClientSession() as http:
        async with http.get(URL(sdk.build_image_url(f"{PAGES}/", {"vw": 801}), encoded=True)) as r:
            body = await r.json()
            assert r.status == 502 and r.headers["X-Capture-Replay"] == "miss"
    assert "GET /demo/*/image was not recorded in oneshot.msgpack" in body["error"]
    assert any("query.vw" in d for d in body["closest"][0]["differences"])
