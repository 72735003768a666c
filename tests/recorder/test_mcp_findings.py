"""An MCP tool call's findings are those of the REST request it stands for
(`recorder.findings.tool_findings` over `recorder.mcp_tools.rest_call` and `rest_payload`)."""

from __future__ import annotations

import json

from recorder.findings import Level, request_findings, tool_findings
from recorder.mcp_tools import ACT, CLOSE, CONTENT, CREATE, GET, METADATA, SCREENSHOT, rest_payload


def test_rest_payload_is_the_rest_request_body_or_query():
    act = {"sessionId": "s", "type": "fill", "payload": {"selector": "#a", "value": "x"}}
    query, body = rest_payload(ACT, act)
    assert query == "" and json.loads(body) == {"type": "fill", "payload": act["payload"]}
    assert json.loads(rest_payload(ACT, {"sessionId": "s", "type": "title"})[1]) == {
        "type": "title",
        "payload": {},
    }
    assert rest_payload(CREATE, {"cdp": True}) == ("", b'{"cdp": true}')
    shot = rest_payload(SCREENSHOT, {"url": "http://x/", "full": True, "vw": 800})
    assert shot == ("url=http%3A%2F%2Fx%2F&full=true&vw=800", b"")
    assert rest_payload(GET, {"sessionId": "s"}) == rest_payload(CLOSE, {"sessionId": "s"})


def test_tool_findings_match_the_rest_requests():
    payload = {"selector": "text=Go", "bogus": 1}
    act = tool_findings(ACT, {"sessionId": "s", "type": "click", "payload": payload}, "u")
    rest = request_findings(
        "POST",
        "/v1/sessions/s/actions",
        "",
        json.dumps({"type": "click", "payload": payload}).encode(),
    )
    assert act == rest and [f.level for f in act] == [Level.UNKNOWN, Level.SELECTOR]
    [content] = tool_findings(CONTENT, {"url": "http://x/", "waitFor": "xpath=//h1"}, "u 1")
    assert content.level == Level.SELECTOR
    assert content.message.startswith("content option waitFor uses xpath=")
    # a chosen option a capture tool offers warns as on its one-shot endpoint
    chosen, _ = tool_findings(METADATA, {"url": "http://x/", "waitFor": "xpath=//h1"}, "u")
    assert chosen.level == Level.CHOSEN and "metadata option waitFor" in chosen.message
    assert tool_findings(SCREENSHOT, {"url": "http://x/", "selector": "#a"}, "u") == []
    assert tool_findings(GET, {"sessionId": "s"}, "u") == []
    assert tool_findings("no_such_tool", {"x": 1}, "u") == []


def test_request_findings_read_the_tool_calls_of_an_mcp_request():
    payload = {"selector": "text=Go", "bogus": 1}
    arguments = {"sessionId": "s", "type": "click", "payload": payload}
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call"}
    body = json.dumps({**call, "params": {"name": ACT, "arguments": arguments}}).encode()
    assert request_findings("POST", "/mcp/v1", "", body) == tool_findings(ACT, arguments, "u")
    listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}
    assert request_findings("POST", "/mcp/v1", "", json.dumps(listing).encode()) == []
    assert request_findings("GET", "/mcp/v1", "", body) == []
    assert request_findings("POST", "/mcp/v1", "", b"[" * 100_000 + b"]" * 100_000) == []
