"""MCP at /mcp/v1 on the emulator, driven by the official `mcp` Python client over Streamable
HTTP, on real Chromium: the tools, their schemas, tool errors, and the same sessions, limit and
billing as the REST API."""

from __future__ import annotations

import asyncio
import base64
import io

import aiohttp
import jsonschema
import pytest
from PIL import Image

from recorder.mcp_tools import MCP_PATH, TOOL_NAMES
from tests.emulator import TOKEN, RunningEmulator, emulator_config
from tests.mcp_client import call_error, call_ok, json_of, mcp_session

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
pytestmark = pytest.mark.browser
STREAM_HEADERS = {"Accept": "application/json, text/event-stream"}


async def test_mcp_lists_the_eight_tools_with_valid_input_schemas(emulator):
    async with mcp_session(emulator.url) as mcp:
        tools = (await mcp.list_tools()).tools
    assert [t.name for t in tools] == list(TOOL_NAMES)
    assert len(tools) == 8
    for tool in tools:
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        assert tool.description
    by_name = {t.name: t.input_schema for t in tools}
    assert by_name["browser_session_create"]["properties"]["maxTtlSeconds"]["maximum"] == 900
    assert "goto" in by_name["browser_session_act"]["properties"]["type"]["enum"]
    assert by_name["capture_pdf"]["required"] == ["url"]


async def test_mcp_without_a_token_is_401_json(emulator):
    async with aiohttp.ClientSession() as http:
        for token in (None, "Bearer not-base64!"):
            headers = dict(STREAM_HEADERS)
            if token:
                headers["Authorization"] = token
            async with http.post(emulator.url + MCP_PATH, json=INITIALIZE, headers=headers) as r:
                assert r.status == 401
                assert r.content_type == "application/json"
                body = await r.json()
        assert body["success"] is False and "Bearer" in body["error"]
        async with http.get(emulator.url + MCP_PATH, headers=STREAM_HEADERS) as r:
            assert r.status == 401


async def test_mcp_bad_arguments_are_tool_errors(emulator):
    async with mcp_session(emulator.url) as mcp:
        err = await call_error(mcp, "browser_session_create", {"maxTtlSeconds": "long"})
        assert err["status"] == 400
        assert "maxTtlSeconds" in err["error"] and "integer" in err["error"]
        err = await call_error(mcp, "browser_session_create", {"maxTtlSeconds": 901})
        assert "maxTtlSeconds" in err["error"] and "900" in err["error"]
        err = await call_error(mcp, "browser_session_act", {"type": "goto"})
        assert "sessionId" in err["error"]
        err = await call_error(mcp, "browser_session_act", {"sessionId": "s", "type": "fly"})
        assert "type" in err["error"] and "fly" in err["error"]
        err = await call_error(mcp, "browser_session_get", {"sessionId": "sess_nope"})
        assert err == {"status": 404, "success": False, "error": "Session not found"}
        err = await call_error(mcp, "capture_screenshot", {"url": "http://x", "vw": 0})
        assert err["status"] == 400 and "vw" in err["error"]
        err = await call_error(mcp, "capture_content", {})
        assert "url" in err["error"]
        err = await call_error(mcp, "capture_everything", {"url": "http://x"})
        assert "unknown tool" in err["error"]
        # the MCP session is still usable after every refusal
        assert len((await mcp.list_tools()).tools) == 8


async def test_mcp_whole_session_on_chromium_shares_the_rest_registry(emulator, pages):
    async with mcp_session(emulator.url) as mcp:
        created = json_of(await call_ok(mcp, "browser_session_create", {"maxTtlSeconds": 300}))
        sid = created["sessionId"]
        assert set(created) == {"sessionId", "expiresAt"}
        act = {"sessionId": sid}
        goto = await call_ok(
            mcp,
            "browser_session_act",
            {**act, "type": "goto", "payload": {"url": pages.url("/counter")}},
        )
        assert json_of(goto)["title"] == "Counter"
        click = await call_ok(
            mcp, "browser_session_act", {**act, "type": "click", "payload": {"selector": "#inc"}}
        )
        assert json_of(click)["matched"] is True
        query = await call_ok(
            mcp, "browser_session_act", {**act, "type": "query", "payload": {"selector": "#count"}}
        )
        assert json_of(query)["elements"][0]["text"] == "1"
        shot = await call_ok(mcp, "browser_session_act", {**act, "type": "screenshot"})
        assert [b.type for b in shot.content] == ["text", "image"]
        assert json_of(shot)["image"] == "content[1]"
        image = shot.content[1]
        assert image.mime_type == "image/png"
        png = Image.open(io.BytesIO(base64.b64decode(image.data)))
        assert png.format == "PNG" and png.size == (1440, 900)

        await emulator.advance(61)
        state = json_of(await call_ok(mcp, "browser_session_get", act))
        assert state["status"] == "active" and state["billedCredits"] is None
        assert state["creditsSoFar"] == 2 and state["expiresInSeconds"] == 239
        assert state["actionCount"] == 4
        assert state["actionBreakdown"]["click"] == {"total": 1, "success": 1, "error": 0}
        # the very session the REST API sees
        mcp_only = ("sessionId", "expiresInSeconds", "creditsSoFar")
        assert await emulator.get(sid) == {
            "id": sid,
            **{k: v for k, v in state.items() if k not in mcp_only},
        }

        closed = json_of(await call_ok(mcp, "browser_session_close", act))
        assert closed["status"] == "closed" and closed["billedCredits"] == 2
        assert closed["creditsSoFar"] == 2 and closed["expiresInSeconds"] == 0
        err = await call_error(mcp, "browser_session_act", {**act, "type": "title"})
        assert err["status"] == 409 and "not active" in err["error"]
    usage = (await emulator.call("GET", "/__admin/usage", token=None))[1]
    assert usage["users"]["user_123"]["creditsBilled"] == 2, usage


async def test_mcp_sixth_session_is_a_tool_error_with_the_429_text(emulator):
    async with mcp_session(emulator.url) as mcp:
        for _ in range(5):
            await call_ok(mcp, "browser_session_create", {})
        err = await call_error(mcp, "browser_session_create", {})
        assert err["status"] == 429
        assert err["error"].startswith("User has reached the active session limit (5 active")
        assert err["maxConcurrentSessions"] == 5
    status, body = await emulator.call("POST", "/v1/sessions", {})
    assert status == 429 and body["error"] == err["error"]


async def test_mcp_capture_tools(emulator, pages):
    async with mcp_session(emulator.url) as mcp:
        shot = await call_ok(
            mcp, "capture_screenshot", {"url": pages.url("/"), "vw": 800, "vh": 600}
        )
        assert [b.type for b in shot.content] == ["image"]
        png = Image.open(io.BytesIO(base64.b64decode(shot.content[0].data)))
        assert (png.format, png.size) == ("PNG", (800, 600))
        jpeg = await call_ok(mcp, "capture_screenshot", {"url": pages.url("/"), "type": "jpeg"})
        assert jpeg.content[0].mime_type == "image/jpeg"

        pdf = await call_ok(mcp, "capture_pdf", {"url": pages.url("/"), "landscape": True})
        assert [b.type for b in pdf.content] == ["resource"]
        resource = pdf.content[0].resource
        assert resource.mime_type == "application/pdf"
        assert base64.b64decode(resource.blob).startswith(b"%PDF-")

        content = json_of(await call_ok(mcp, "capture_content", {"url": pages.url("/")}))
        assert "Hello from the test index" in content["textContent"]
        assert "<h1" in content["html"] and "# Hello" in content["markdown"]

        meta = json_of(await call_ok(mcp, "capture_metadata", {"url": pages.url("/")}))
        assert meta["metadata"]["title"] == "Capture test index"
        assert meta["metadata"]["description"] == "A page for capture-replay tests"

        err = await call_error(mcp, "capture_pdf", {"url": pages.url("/"), "format": "B9"})
        assert err["status"] == 400 and "format must be one of" in err["error"]
        err = await call_error(mcp, "capture_content", {"url": emulator.url + "/"})
        assert "itself" in err["error"]


async def test_mcp_get_stream_is_served_and_ends_when_the_server_stops():
    emulator = await RunningEmulator(emulator_config()).start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            headers = {"Authorization": TOKEN, **STREAM_HEADERS}
            async with http.post(emulator.url + MCP_PATH, json=INITIALIZE, headers=headers) as r:
                assert r.status == 200 and r.content_type == "text/event-stream"
                headers["Mcp-Session-Id"] = r.headers["Mcp-Session-Id"]
                await r.read()
            headers["Mcp-Protocol-Version"] = "2025-06-18"
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            async with http.post(emulator.url + MCP_PATH, json=done, headers=headers) as r:
                assert r.status == 202
            stream = await http.get(
                emulator.url + MCP_PATH, headers={**headers, "Accept": "text/event-stream"}
            )
            assert stream.status == 200 and stream.content_type == "text/event-stream"
            await asyncio.wait_for(emulator.stop(), 10)  # the open stream does not hold it
            assert await asyncio.wait_for(stream.read(), 10) == b""
    finally:
        if emulator.http is not None and not emulator.http.closed:
            await emulator.stop()
