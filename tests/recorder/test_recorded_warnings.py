"""Warnings recorded through the proxy in front of the emulator (real Chromium): kept in the
stored answers, listed per session by `audit`, and answered once (not twice) when replayed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from mock_server.config import Mode
from recorder.audit import audit_cassettes
from recorder.cassette import open_cassette
from recorder.cli import commands
from recorder.records import WARNING_HEADER
from tests.emulator import TOKEN, RunningEmulator, emulator_config
from tests.replay import recording_proxy

pytestmark = pytest.mark.browser

UNKNOWN_FILL = "fill payload.bogus is unknown: neither Capture's docs nor capture-replay name it"
TEXT_SELECTOR = (
    "click payload.selector uses text=: Playwright-only selector syntax that Capture's docs do "
    "not describe (they take CSS selectors)"
)


async def flow(url: str, page: str) -> list[tuple[int, list[str]]]:
    """Create, goto, a fill with an unknown field (twice), a text= click, close: each answer's
    status and warnings."""
    seen = []
    async with aiohttp.ClientSession(
        headers={"Authorization": TOKEN}, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:

        async def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
            data = None if body is None else json.dumps(body).encode()
            async with http.request(method, url + path, data=data) as resp:
                seen.append((resp.status, resp.headers.getall(WARNING_HEADER, [])))
                return await resp.json()

        sid = (await call("POST", "/v1/sessions", {"maxTtlSeconds": 300}))["session"]["id"]
        actions = f"/v1/sessions/{sid}/actions"
        await call("POST", actions, {"type": "goto", "payload": {"url": page}})
        fill = {"type": "fill", "payload": {"selector": "#user", "value": "a", "bogus": 1}}
        await call("POST", actions, fill)
        await call("POST", actions, fill)
        await call("POST", actions, {"type": "click", "payload": {"selector": "text=Sign in"}})
        await call("DELETE", f"/v1/sessions/{sid}")
    return seen


async def test_recorded_warnings_reach_the_cassette_audit_and_replay(
    emulator, pages, tmp_path: Path
):
    cassette = tmp_path / "warned.msgpack"
    async with recording_proxy(emulator.url, cassette) as url:
        live = await flow(url, pages.url("/form"))
    assert [s for s, _ in live] == [201, 200, 200, 200, 200, 200]
    assert UNKNOWN_FILL in live[2][1] and live[4][1] == [TEXT_SELECTOR]

    with open_cassette(cassette) as opened:
        items = list(opened.interactions())
        assert [list(i.response.warnings) for i in items] == [w for _, w in live]
        report = audit_cassettes([opened])
    (session,) = report.sessions
    counts = {w.warning: w.count for w in session.warnings}
    assert counts[UNKNOWN_FILL] == 2 and counts[TEXT_SELECTOR] == 1

    text = CliRunner().invoke(commands, ["audit", str(cassette)])
    assert text.exit_code == 0, text.output
    assert "    fields the real API may not know:" in text.output
    assert f"         2 × {UNKNOWN_FILL}" in text.output
    as_json = CliRunner().invoke(commands, ["audit", "--json", str(cassette)])
    (audited,) = json.loads(as_json.output)["sessions"]
    assert {"warning": TEXT_SELECTOR, "count": 1} in audited["warnings"]

    replay = await RunningEmulator(emulator_config(cassettes=(cassette,), mode=Mode.REPLAY)).start()
    try:
        replayed = await flow(replay.url, pages.url("/form"))
    finally:
        await replay.stop()
    assert replayed == live  # the request's own findings, the recorded header not added twice
