"""Capture's MCP on the wire (`recorder.mcp_tools`, `recorder.mcp_audit`) and the replay of
recorded MCP sessions (`mock_server.replay.mcp`) on hand-written cassettes, with no browser."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mock_server.actions.dispatch import ActionType
from mock_server.config import MAX_TTL_SECONDS
from mock_server.replay.mcp import McpReplayer
from mock_server.sessions import CREATE_FIELDS
from recorder.cassette import CassetteWriter, open_cassette
from recorder.mcp_audit import audit_mcp, mcp_label
from recorder.mcp_tools import (
    TOOL_NAMES,
    input_schemas,
    mcp_calls,
    messages_in,
    query_of,
)
from recorder.records import Interaction, RecordedRequest, RecordedResponse

SSE = (("Content-Type", "text/event-stream"),)
AUTH = (("Authorization", "Bearer <redacted user=user_123>"),)


def sse(*messages: dict) -> bytes:
    return b"".join(
        b"event: message\r\ndata: " + json.dumps(m).encode() + b"\r\n\r\n" for m in messages
    )


def rpc(rpc_id: int, method: str, params: dict | None = None) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params or {}}
    ).encode()


def tool_result(rpc_id: int, value: dict, *, error: bool = False) -> dict:
    text = {"type": "text", "text": json.dumps(value)}
    return {"jsonrpc": "2.0", "id": rpc_id, "result": {"content": [text], "isError": error}}


def exchange(
    seq: int, body: bytes, answer: bytes, *, sid: str = "m1", initialize: bool = False
) -> Interaction:
    headers = AUTH if initialize else (*AUTH, ("Mcp-Session-Id", sid))
    response_headers = (*SSE, ("Mcp-Session-Id", sid)) if initialize else SSE
    return Interaction(
        seq=seq,
        start=1_767_225_600.0 + seq,
        duration=0.01,
        session_id=None,
        action_type=None,
        user="user_123",
        request=RecordedRequest("POST", "/mcp/v1", "", headers, body),
        response=RecordedResponse(200, response_headers, answer, "OK"),
    )


def recorded_session(sid: str = "m1", first: int = 1) -> list[Interaction]:
    s = first
    return [
        exchange(
            s,
            rpc(0, "initialize", {"protocolVersion": "2025-06-18"}),
            sse({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18"}}),
            sid=sid,
            initialize=True,
        ),
        exchange(
            s + 1,
            rpc(
                1,
                "tools/call",
                {"name": "browser_session_create", "arguments": {"maxTtlSeconds": 60}},
            ),
            sse(tool_result(1, {"sessionId": "sess_rec", "expiresAt": "2026-01-01T00:01:00.000Z"})),
            sid=sid,
        ),
        exchange(
            s + 2,
            rpc(
                2,
                "tools/call",
                {
                    "name": "browser_session_act",
                    "arguments": {
                        "sessionId": "sess_rec",
                        "type": "click",
                        "payload": {"selector": "#inc"},
                    },
                },
            ),
            sse(
                {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
                tool_result(2, {"matched": True}),
            ),
            sid=sid,
        ),
        exchange(
            s + 3,
            rpc(
                3,
                "tools/call",
                {
                    "name": "browser_session_act",
                    "arguments": {
                        "payload": {"selector": "#inc"},
                        "type": "click",
                        "sessionId": "sess_rec",
                    },
                },
            ),
            sse(tool_result(3, {"matched": True, "n": 2})),
            sid=sid,
        ),
        exchange(
            s + 4,
            rpc(
                4,
                "tools/call",
                {"name": "browser_session_close", "arguments": {"sessionId": "sess_rec"}},
            ),
            sse(tool_result(4, {"sessionId": "sess_rec", "status": "closed", "billedCredits": 3})),
            sid=sid,
        ),
        exchange(
            s + 5,
            rpc(
                5,
                "tools/call",
                {"name": "capture_pdf", "arguments": {"url": "https://example.com/"}},
            ),
            sse(tool_result(5, {"status": 400, "error": "bad"}, error=True)),
            sid=sid,
        ),
    ]


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.msgpack"
    with CassetteWriter(path, upstream="https://capture.page") as writer:
        for item in recorded_session():
            writer.append(item)
    return path


def test_input_schemas_are_valid_and_follow_the_rest_contract():
    schemas = input_schemas([t.value for t in ActionType], MAX_TTL_SECONDS)
    assert list(schemas) == list(TOOL_NAMES)
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    assert sorted(schemas["browser_session_create"]["properties"]) == sorted(CREATE_FIELDS)
    assert len(schemas["browser_session_act"]["properties"]["type"]["enum"]) == 27
    assert query_of({"url": "u", "full": True, "dark": False, "vw": 800.0, "scale": 1.5}) == [
        ("url", "u"),
        ("full", "true"),
        ("dark", "false"),
        ("vw", "800"),
        ("scale", "1.5"),
    ]


def test_messages_and_calls_of_an_exchange():
    body = b'event: message\ndata: {"jsonrpc":"2.0",\ndata: "id":7,"result":{}}\n\n: ping\n\n'
    assert messages_in(body, "text/event-stream; charset=utf-8") == [
        {"jsonrpc": "2.0", "id": 7, "result": {}}
    ]
    assert messages_in(b"not json") == [] and messages_in(b'[{"jsonrpc":"2.0","id":1}]') == [
        {"jsonrpc": "2.0", "id": 1}
    ]
    item = recorded_session()[2]
    [call] = mcp_calls(item.request.body, item.response.headers, item.response.body)
    assert call.tool == "browser_session_act" and call.arguments["type"] == "click"
    assert call.structured() == {"matched": True} and not call.is_error
    assert mcp_label(item.request.body) == "browser_session_act click"
    assert mcp_label(rpc(1, "tools/list")) == "tools/list" and mcp_label(b"") is None


def test_audit_counts_tool_calls_and_credits_per_mcp_session():
    [audit] = audit_mcp(recorded_session("m1") + recorded_session("m2", 10)[:2])[:1]
    assert audit.mcp_session_id == "m1" and audit.user == "user_123" and audit.exchanges == 6
    assert {(t.tool, t.count, t.errors) for t in audit.tools} == {
        ("browser_session_create", 1, 0),
        ("browser_session_act", 2, 0),
        ("browser_session_close", 1, 0),
        ("capture_pdf", 1, 1),
    }
    assert (audit.browser_sessions, audit.credits, audit.credits_source) == (
        ("sess_rec",),
        3,
        "billed",
    )
    assert audit.captures == 0  # the capture was a tool error


def _post(replayer: McpReplayer, body: bytes, sid: str | None = None):
    headers = (("Mcp-Session-Id", sid),) if sid else ()
    status, answer_headers, answer = replayer.answer("POST", headers, body)
    content_type = dict(answer_headers).get("Content-Type")
    return status, dict(answer_headers), messages_in(answer, content_type)


def test_replay_maps_ids_and_answers_in_recorded_order(cassette):
    with open_cassette(cassette) as opened:
        replayer = McpReplayer.of([opened])
    assert replayer is not None
    status, headers, [init] = _post(replayer, rpc(41, "initialize"))
    sid = headers["Mcp-Session-Id"]
    assert status == 200 and init["id"] == 41 and sid != "m1"
    assert _post(replayer, b'{"jsonrpc":"2.0","method":"notifications/initialized"}', sid)[0] == 202

    _, _, [created] = _post(
        replayer,
        rpc(
            42, "tools/call", {"name": "browser_session_create", "arguments": {"maxTtlSeconds": 60}}
        ),
        sid,
    )
    fresh = json.loads(created["result"]["content"][0]["text"])["sessionId"]
    assert created["id"] == 42 and fresh.startswith("sess_") and fresh != "sess_rec"
    click = {
        "name": "browser_session_act",
        "arguments": {"type": "click", "sessionId": fresh, "payload": {"selector": "#inc"}},
    }
    _, _, [progress, first] = _post(replayer, rpc(43, "tools/call", click), sid)
    assert progress["method"] == "notifications/progress" and first["id"] == 43
    _, _, [second] = _post(replayer, rpc(44, "tools/call", click), sid)
    assert json.loads(second["result"]["content"][0]["text"]) == {"matched": True, "n": 2}
    _, _, [closed] = _post(
        replayer,
        rpc(45, "tools/call", {"name": "browser_session_close", "arguments": {"sessionId": fresh}}),
        sid,
    )
    assert json.loads(closed["result"]["content"][0]["text"])["sessionId"] == fresh

    _, _, [missed] = _post(
        replayer,
        rpc(
            46,
            "tools/call",
            {
                "name": "browser_session_act",
                "arguments": {**click["arguments"], "payload": {"selector": "#dec"}},
            },
        ),
        sid,
    )
    assert missed["result"]["isError"] is True
    error = json.loads(missed["result"]["content"][0]["text"])["error"]
    assert "closest: mcp.msgpack#3 browser_session_act" in error
    assert 'arguments.payload.selector: "#inc" -> "#dec"' in error

    _, _, [ping] = _post(replayer, rpc(47, "ping"), sid)
    assert ping == {"jsonrpc": "2.0", "id": 47, "result": {}}
    _, _, [unknown] = _post(replayer, rpc(48, "resources/list"), sid)
    assert unknown["error"]["code"] == -32601
    assert replayer.answer("GET", (("Mcp-Session-Id", sid),), b"")[0] == 405
    assert _post(replayer, rpc(49, "tools/list"))[0] == 400  # no Mcp-Session-Id
    assert replayer.answer("DELETE", (("Mcp-Session-Id", sid),), b"")[0] == 200
    assert _post(replayer, rpc(50, "tools/list"), sid)[0] == 404
    # a second client replays the same recording under another session id
    assert _post(replayer, rpc(1, "initialize"))[1]["Mcp-Session-Id"] not in (sid, "m1")
