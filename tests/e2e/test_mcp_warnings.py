"""Warnings and strict mode for MCP tool calls, through the official `mcp` client on real
Chromium: a tool call is screened as the REST request it stands for, its findings shown as
`X-Capture-Replay-Warning: ...` text blocks at the end of its result and logged in
`/__admin/warnings`; under `--strict` (and `=documented`) the call is a tool error with the
REST route's very 400 answer, before anything runs; in replay, before the recording is consulted."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server.config import Mode, StrictLevel
from recorder.cassette import open_cassette
from recorder.records import WARNING_HEADER
from tests.emulator import RunningEmulator, emulator_config
from tests.mcp_client import call_error, call_ok, json_of, mcp_session
from tests.replay import recording_proxy

pytestmark = pytest.mark.browser
ACT = "browser_session_act"
PREFIX = WARNING_HEADER + ": "
BOGUS = "click payload.bogus is unknown: neither Capture's docs nor capture-replay name it"


def warnings_in(result: Any) -> list[str]:
    """The findings a tool result shows (its trailing warning text blocks)."""
    return [
        b.text.removeprefix(PREFIX)
        for b in result.content
        if b.type == "text" and b.text.startswith(PREFIX)
    ]


async def logged(emu: RunningEmulator) -> dict[str, dict[str, Any]]:
    status, body = await emu.call("GET", "/__admin/warnings", token=None)
    assert status == 200, body
    return {w["warning"]: w for w in body["warnings"]}


async def rest_error(emu: RunningEmulator, sid: str, kind: str, payload: dict) -> dict:
    """The REST route's answer to the same action, as a tool error body reads it."""
    path = f"/v1/sessions/{sid}/actions"
    status, body = await emu.call("POST", path, {"type": kind, "payload": payload})
    return {"status": status, **body}


@pytest.fixture
async def strict(request):
    running = await RunningEmulator(emulator_config(strict=request.param)).start()
    yield running
    await running.stop()


async def test_mcp_warns_of_unknown_fields_and_playwright_selectors(emulator, pages):
    async with mcp_session(emulator.url) as mcp:
        created = await call_ok(mcp, "browser_session_create", {})
        assert warnings_in(created) == []
        act = {"sessionId": json_of(created)["sessionId"]}
        goto = await call_ok(
            mcp, ACT, {**act, "type": "goto", "payload": {"url": pages.url("/counter")}}
        )
        assert [b.type for b in goto.content] == ["text"]  # a clean call: nothing added
        bogus = {**act, "type": "click", "payload": {"selector": "#inc", "bogus": 1}}
        for _ in range(2):
            click = await call_ok(mcp, ACT, bogus)
            assert json_of(click)["matched"] is True  # it ran, and its answer comes first
            assert warnings_in(click) == [BOGUS]
        text = {**act, "type": "click", "payload": {"selector": "text=Increment"}}
        click = await call_ok(mcp, ACT, text)
        assert json_of(click)["matched"] is True
        [selector] = warnings_in(click)
        assert selector.startswith("click payload.selector uses text=: Playwright-only")
        missing = {**act, "type": "click", "payload": {"selector": "#nope", "timeoutMs": 100}}
        failed = await mcp.call_tool(ACT, missing)
        assert failed.is_error and json_of(failed)["status"] == 400  # an error warns too
        [timeout] = warnings_in(failed)
        assert timeout.startswith("click payload.timeoutMs is not named by Capture's docs")
        shot = await call_ok(
            mcp, "capture_screenshot", {"url": pages.url("/"), "selector": "h1 >> nth=0"}
        )
        assert shot.content[0].type == "image"
        [oneshot] = warnings_in(shot)
        assert oneshot.startswith("image option selector uses >>")
    log = await logged(emulator)
    assert log[BOGUS]["count"] == 2 and log[BOGUS]["level"] == "unknown"
    assert log[BOGUS]["first"]["method"] == "POST" and log[BOGUS]["first"]["path"] == "/mcp/v1"
    assert log[selector]["count"] == 1 and log[selector]["level"] == "selector"
    assert log[oneshot]["count"] == 1
    assert log[timeout]["level"] == "chosen"
    assert len(log) == 4  # the clean calls logged nothing


@pytest.mark.parametrize("strict", [StrictLevel.UNKNOWN], indirect=True)
async def test_mcp_strict_refuses_as_the_rest_route(strict, pages):
    async with mcp_session(strict.url) as mcp:
        sid = json_of(await call_ok(mcp, "browser_session_create", {}))["sessionId"]
        act = {"sessionId": sid}
        await call_ok(mcp, ACT, {**act, "type": "goto", "payload": {"url": pages.url("/form")}})
        for payload in (
            {"selector": "#user", "value": "ann", "bogus": 1},
            {"selector": "text=User", "value": "ann"},
        ):
            refused = await mcp.call_tool(ACT, {**act, "type": "fill", "payload": payload})
            err = json_of(refused)
            assert refused.is_error and err["status"] == 400 and err["success"] is False
            assert err["error"] in warnings_in(refused)
            assert err == await rest_error(strict, sid, "fill", payload)
        # nothing ran: the field is still empty; each refusal counted as a failed fill
        query = {**act, "type": "query", "payload": {"selector": "#user", "fields": ["value"]}}
        assert json_of(await call_ok(mcp, ACT, query))["elements"][0]["value"] == ""
        state = json_of(await call_ok(mcp, "browser_session_get", act))
        assert state["actionBreakdown"]["fill"] == {"total": 4, "success": 0, "error": 4}
        # a chosen alias passes `--strict`, with its warning
        alias = {"selector": "#user", "text": "ann"}
        fill = await call_ok(mcp, ACT, {**act, "type": "fill", "payload": alias})
        assert any("payload.text is not named by Capture's docs" in w for w in warnings_in(fill))
        assert json_of(await call_ok(mcp, ACT, query))["elements"][0]["value"] == "ann"
        err = await call_error(
            mcp, "capture_screenshot", {"url": pages.url("/"), "selector": "xpath=//h1"}
        )
        assert err["status"] == 400 and err["error"].startswith("image option selector uses")
    log = await logged(strict)
    assert any("payload.bogus" in m for m in log)  # refused findings are logged too


@pytest.mark.parametrize("strict", [StrictLevel.DOCUMENTED], indirect=True)
async def test_mcp_strict_documented_refuses_a_chosen_alias(strict, pages):
    async with mcp_session(strict.url) as mcp:
        sid = json_of(await call_ok(mcp, "browser_session_create", {}))["sessionId"]
        act = {"sessionId": sid}
        goto = {"url": pages.url("/counter")}
        assert warnings_in(await call_ok(mcp, ACT, {**act, "type": "goto", "payload": goto})) == []
        payload = {"selector": "#inc", "clickCount": 1}
        err = await call_error(mcp, ACT, {**act, "type": "click", "payload": payload})
        assert "click payload.clickCount is not named by Capture's docs" in err["error"]
        assert err == await rest_error(strict, sid, "click", payload)


async def test_mcp_replay_warns_and_strict_refuses(emulator, pages, tmp_path):
    cassette = tmp_path / "agent.msgpack"
    goto = {"type": "goto", "payload": {"url": pages.url("/counter")}}
    text = {"type": "click", "payload": {"selector": "text=Increment"}}

    async def run(url: str) -> list[Any]:
        async with mcp_session(url) as mcp:
            sid = json_of(await call_ok(mcp, "browser_session_create", {}))["sessionId"]
            return [await mcp.call_tool(ACT, {"sessionId": sid, **a}) for a in (goto, text)]

    async with recording_proxy(emulator.url, cassette) as url:
        recorded = await run(url)
    [finding] = warnings_in(recorded[1])  # the live answer's block, kept in the recording
    with open_cassette(cassette) as opened:  # and in the exchange's stored answer
        stored = [opened.load(e).response.warnings for e in opened.entries]
    assert [w for w in stored if w] == [(finding,)]
    await pages.stop()

    server = await RunningEmulator(emulator_config(cassettes=(cassette,), mode=Mode.REPLAY)).start()
    try:
        replayed = await run(server.url)
        assert [r.model_dump() for r in replayed] == [r.model_dump() for r in recorded]
        assert (await logged(server))[finding]["count"] == 1
    finally:
        await server.stop()
    config = emulator_config(cassettes=(cassette,), mode=Mode.REPLAY, strict=StrictLevel.UNKNOWN)
    server = await RunningEmulator(config).start()
    try:
        clean, refused = await run(server.url)
        assert not clean.is_error and warnings_in(clean) == []
        assert refused.is_error
        assert json_of(refused) == {"status": 400, "success": False, "error": finding}
        assert finding in await logged(server)
    finally:
        await server.stop()
