"""The official Python SDK (`capture-sdk` from PyPI) drives whole sessions against the emulator,
and a CDP session is reachable with Playwright's connect_over_cdp."""

from __future__ import annotations

import base64

import pytest
from capture import Capture
from capture.client import CaptureSessionsError
from playwright.async_api import async_playwright

from tests.contract.schemas import validate


@pytest.fixture
def sdk(emulator, monkeypatch):
    monkeypatch.setattr(Capture, "EDGE_URL", emulator.url)
    return Capture("user_123", "secret")


async def test_the_sdk_drives_a_whole_session(sdk, emulator, pages):
    created = await sdk.sessions.create({"maxTtlSeconds": 120})
    validate(created, "CreateSessionResponse")
    sid = created["session"]["id"]
    goto = await sdk.sessions.action(sid, "goto", {"url": pages.url("/form")})
    assert goto["title"] == "Login form"
    await sdk.sessions.action(sid, "fill", {"selector": "#user", "value": "ada"})
    await sdk.sessions.action(sid, "click", {"selector": "#submit"})
    out = await sdk.sessions.action(sid, "query", {"selector": "#out"})
    assert out["elements"][0]["text"] == "submitted:ada"
    shot = await sdk.sessions.action(sid, "screenshot", {"fullPage": True})
    assert base64.b64decode(shot["bodyBase64"]).startswith(b"\x89PNG")
    info = await sdk.sessions.get(sid)
    assert info["session"]["actionCount"] == 5
    await emulator.advance(61)
    closed = await sdk.sessions.close(sid)
    validate(closed, "GetSessionResponse")
    assert closed["session"]["billedCredits"] == 2

    with pytest.raises(CaptureSessionsError) as err:
        await sdk.sessions.action(sid, "title")
    assert err.value.status == 409
    with pytest.raises(CaptureSessionsError) as err:
        await sdk.sessions.get("sess_missing")
    assert err.value.status == 404 and str(err.value) == "Session not found"


async def test_a_cdp_session_is_reachable_with_connect_over_cdp(emulator, pages):
    created = await emulator.create({"maxTtlSeconds": 120, "cdp": True})
    assert created["cdp"] is True and created["connectUrl"].startswith("ws://127.0.0.1:")
    sid = created["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    session = await emulator.get(sid)
    assert session["options"]["cdp"] is True and session["connectUrl"]
    async with async_playwright() as p:
        browser = await p.chromium.connect_over_cdp(created["connectUrl"])
        try:
            found = [
                pg for ctx in browser.contexts for pg in ctx.pages if pg.url.endswith("/counter")
            ]
            assert found, [pg.url for ctx in browser.contexts for pg in ctx.pages]
            await found[0].click("#inc")
        finally:
            await browser.close()
    # What the CDP client did is visible through the API: same page.
    count = await emulator.act(sid, "query", {"selector": "#count"})
    assert count["elements"][0]["text"] == "1"
    closed = await emulator.close(sid)
    assert "connectUrl" not in closed
