"""Fault rules fire on MCP tool calls, driven by the official `mcp` client on real Chromium: a
tool call is matched as the REST request it stands for (method, path and its template, action,
session, user, endpoint) and a fired rule is a tool error with the contract's status and text;
`end_session`, `delay_ms` and `reset` do what they do on REST. The MCP transport's own requests
(initialize, tools/list) are never matched."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from mock_server.config import Mode
from mock_server.state import BROWSER
from recorder.mcp_tools import ACT, CLOSE, CREATE, GET, MCP_PATH, PDF, SCREENSHOT, SESSION_HEADER
from recorder.statuses import STATUSES, Route
from tests.emulator import TOKEN, RunningEmulator, emulator_config
from tests.fault_admin import add_fault, fault_list, journal
from tests.mcp_client import call_error, call_ok, json_of, mcp_session
from tests.replay import recording_proxy

pytestmark = pytest.mark.browser


async def test_a_504_on_the_second_screenshot_tool_call(emulator, pages):
    await add_fault(emulator, {"action": "screenshot", "after": 1, "times": 1, "status": 504})
    async with mcp_session(emulator.url) as mcp:
        sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 120}))["sessionId"]
        act = {"sessionId": sid}
        await call_ok(mcp, ACT, {**act, "type": "goto", "payload": {"url": pages.url("/counter")}})
        first = await call_ok(mcp, ACT, {**act, "type": "screenshot"})
        assert [b.type for b in first.content] == ["text", "image"]
        err = await call_error(mcp, ACT, {**act, "type": "screenshot"})
        assert err["status"] == 504 and err["success"] is False
        assert err["error"] == STATUSES[Route.ACTION][504].text
        assert err["expiresInSeconds"] == 120 and err["session"]["id"] == sid
        assert err["session"]["status"] == "active"
        await call_ok(mcp, ACT, {**act, "type": "screenshot"})  # the session goes on
        state = json_of(await call_ok(mcp, GET, act))
        # the faulted call ran nothing: two screenshots in the session's counts
        assert state["actionBreakdown"]["screenshot"]["total"] == 2
    (rule,) = await fault_list(emulator)
    assert (rule["matched"], rule["fired"]) == (3, 1)
    faulted = [e for e in await journal(emulator) if e["source"] == "fault"]
    assert [(e["method"], e["path"], e["rule"]) for e in faulted] == [
        ("POST", "/mcp/v1", "fault_1")
    ]


async def test_the_next_create_tool_call_is_refused_then_works(emulator):
    await add_fault(
        emulator,
        {"method": "POST", "path": "/v1/sessions", "user": "user_123", "times": 1, "status": 403},
    )
    async with mcp_session(emulator.url) as mcp:
        err = await call_error(mcp, CREATE, {"maxTtlSeconds": 60})
        assert err == {"status": 403, "success": False, "error": STATUSES[Route.CREATE][403].text}
        sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 60}))["sessionId"]
        await call_ok(mcp, CLOSE, {"sessionId": sid})


async def test_get_and_close_faults_match_the_rest_path_and_template(emulator):
    async with mcp_session(emulator.url) as mcp:
        sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 60}))["sessionId"]
        await add_fault(
            emulator,
            {"method": "GET", "path": "/v1/sessions/{session_id}", "times": 1, "status": 500},
        )
        await add_fault(emulator, {"method": "DELETE", "session": sid, "times": 1, "status": 409})
        err = await call_error(mcp, GET, {"sessionId": sid})
        assert err == {"status": 500, "success": False, "error": "Internal server error"}
        err = await call_error(mcp, CLOSE, {"sessionId": sid})
        assert err["status"] == 409 and err["error"] == STATUSES[Route.CLOSE][409].text
        assert err["session"]["status"] == "active"  # the close did not run
        closed = json_of(await call_ok(mcp, CLOSE, {"sessionId": sid}))
        assert closed["status"] == "closed"


async def test_a_session_expires_mid_flow_through_the_tools(emulator, pages):
    async with mcp_session(emulator.url) as mcp:
        sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 300}))["sessionId"]
        await add_fault(
            emulator,
            {
                "session": sid,
                "path": "/v1/sessions/*/actions",
                "after": 1,
                "times": 1,
                "end_session": "expire",
            },
        )
        act = {"sessionId": sid}
        await call_ok(mcp, ACT, {**act, "type": "goto", "payload": {"url": pages.url("/counter")}})
        err = await call_error(mcp, ACT, {**act, "type": "title"})
        assert err["status"] == 409 and "expired" in err["error"]
        assert err["session"]["status"] == "expired"
        state = json_of(await call_ok(mcp, GET, act))
        assert state["status"] == "expired" and state["billedCredits"] == 1
        assert (await emulator.get(sid))["status"] == "expired"


async def test_a_crash_then_get_shows_the_error_state(emulator):
    async with mcp_session(emulator.url) as mcp:
        sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 300}))["sessionId"]
        await add_fault(emulator, {"method": "GET", "session": sid, "end_session": "crash"})
        state = json_of(await call_ok(mcp, GET, {"sessionId": sid}))
        assert state["status"] == "error"


async def test_capture_tool_faults_match_the_one_shot_endpoint(emulator, pages):
    await add_fault(emulator, {"endpoint": "pdf", "times": 1, "status": 503})
    await add_fault(emulator, {"path": "/*/*/image", "times": 1, "status": 504})
    async with mcp_session(emulator.url) as mcp:
        err = await call_error(mcp, PDF, {"url": pages.url("/counter")})
        assert err == {"status": 503, "success": False, "error": STATUSES[Route.ONESHOT][503].text}
        err = await call_error(mcp, SCREENSHOT, {"url": pages.url("/counter")})
        assert err["status"] == 504 and err["error"] == STATUSES[Route.ONESHOT][504].text
        shot = await call_ok(mcp, SCREENSHOT, {"url": pages.url("/counter")})
        assert shot.content[0].type == "image"


async def test_a_delay_holds_the_tool_call_and_the_transport_is_never_matched(emulator):
    await add_fault(emulator, {"method": "POST", "delay_ms": 400})
    async with mcp_session(emulator.url) as mcp:
        assert len((await mcp.list_tools()).tools) == 8
        started = time.monotonic()
        sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 60}))["sessionId"]
        assert time.monotonic() - started >= 0.4
    # initialize, its notification and tools/list went through unmatched: one tool call matched
    (rule,) = await fault_list(emulator)
    assert (rule["matched"], rule["fired"]) == (1, 1)
    assert (await emulator.get(sid))["status"] == "active"


async def test_a_body_override_is_the_tool_errors_json(emulator):
    body = {"success": False, "error": "maintenance", "retryAfter": 30}
    await add_fault(
        emulator, {"method": "POST", "path": "/v1/sessions", "status": 503, "body": body}
    )
    async with mcp_session(emulator.url) as mcp:
        err = await call_error(mcp, CREATE, {})
    assert err == {"status": 503, **body}


async def test_a_reset_drops_the_tool_calls_http_answer(emulator):
    await add_fault(emulator, {"method": "POST", "path": "/v1/sessions", "times": 1, "reset": True})
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a dropped answer
        async with asyncio.timeout(20):
            async with mcp_session(emulator.url) as mcp:
                await mcp.call_tool(CREATE, {})
    async with mcp_session(emulator.url) as mcp:
        await call_ok(mcp, CREATE, {})
    faulted = [e for e in await journal(emulator) if e["source"] == "fault"]
    assert [(e["status"], e.get("reset")) for e in faulted] == [(None, True)]


async def test_replayed_tool_calls_are_faulted_before_the_recording(emulator, pages, tmp_path):
    cassette = tmp_path / "agent.msgpack"
    steps = [("click", {"selector": "#inc"}), ("query", {"selector": "#count"})] * 2

    async def run(url: str) -> list[str]:
        counts = []
        async with mcp_session(url) as mcp:
            sid = json_of(await call_ok(mcp, CREATE, {"maxTtlSeconds": 120}))["sessionId"]
            act = {"sessionId": sid}
            page = {"url": pages.url("/counter")}
            await call_ok(mcp, ACT, {**act, "type": "goto", "payload": page})
            for action, payload in steps:
                result = await mcp.call_tool(ACT, {**act, "type": action, "payload": payload})
                if result.is_error:
                    counts.append(f"{json_of(result)['status']} {json_of(result)['error']}")
                elif action == "query":
                    counts.append(json_of(result)["elements"][0]["text"])
        return counts

    async with recording_proxy(emulator.url, cassette) as url:
        assert await run(url) == ["1", "2"]
    server = await RunningEmulator(emulator_config(cassettes=(cassette,), mode=Mode.REPLAY)).start()
    try:
        await add_fault(server, {"action": "query", "times": 1, "status": 504})
        # the faulted query took no recorded answer: the next query gets the first one
        assert await run(server.url) == ["504 Action timed out", "1"]
        (rule,) = await fault_list(server)
        assert (rule["matched"], rule["fired"]) == (2, 1)
        assert server.app[BROWSER].launched is False
        headers = {"Authorization": TOKEN, "Accept": "application/json, text/event-stream"}
        async with aiohttp.ClientSession(headers=headers) as http:
            initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            async with http.post(server.url + MCP_PATH, json=initialize) as r:
                mcp_id = r.headers[SESSION_HEADER]
            await add_fault(server, {"method": "POST", "times": 1, "status": 503})
            call = {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": CREATE, "arguments": {"maxTtlSeconds": 120}},
            }
            async with http.post(
                server.url + MCP_PATH, json=call, headers={SESSION_HEADER: mcp_id}
            ) as r:
                assert r.headers["X-Capture-Replay"] == "fault"
                answer = await r.json()
        assert answer["id"] == 7 and answer["result"]["isError"] is True
        faulted = [e for e in await journal(server) if e["source"] == "fault"]
        assert [e["rule"] for e in faulted] == ["fault_1", "fault_2"]
    finally:
        await server.stop()
