"""MCP traffic recorded through `capture-replay record` in front of a live emulator, then the
same client run replayed with no browser: identical tool results, ids mapped, misses named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mock_server.config import Mode
from mock_server.state import BROWSER
from recorder.cassette import open_cassette
from recorder.cli import commands
from recorder.mcp_tools import ACT, CLOSE, CREATE, EVENT_STREAM, GET, METADATA, mcp_calls
from recorder.report import render_report
from tests.emulator import RunningEmulator, emulator_config
from tests.mcp_client import json_of, mcp_session
from tests.replay import recording_proxy

pytestmark = pytest.mark.browser
STEPS = [
    ("goto", {"url": None}),
    ("click", {"selector": "#inc"}),
    ("click", {"selector": "#inc"}),
    ("query", {"selector": "#count"}),
    ("screenshot", {}),
    ("click", {"selector": "#nope", "timeoutMs": 100}),
]


async def agent_run(url: str, page: str) -> list[Any]:
    """What an agent does through the tools; every result as JSON, the session id blanked."""
    results: list[Any] = []
    async with mcp_session(url) as mcp:
        results.append([t.name for t in (await mcp.list_tools()).tools])
        created = await mcp.call_tool(CREATE, {"maxTtlSeconds": 120})
        sid = json_of(created)["sessionId"]
        results.append(created)
        for action, payload in STEPS:
            payload = {k: (page if v is None else v) for k, v in payload.items()}
            results.append(
                await mcp.call_tool(ACT, {"sessionId": sid, "type": action, "payload": payload})
            )
        results.append(await mcp.call_tool(GET, {"sessionId": sid}))
        results.append(await mcp.call_tool(CLOSE, {"sessionId": sid}))
        results.append(await mcp.call_tool(METADATA, {"url": page}))
    return [
        json.loads(
            json.dumps(
                r if isinstance(r, list) else r.model_dump(mode="json", by_alias=True)
            ).replace(sid, "SID")
        )
        for r in results
    ]


def check_commands(cassette: Path) -> None:
    """inspect, audit and report show the MCP session's tool calls by name and its credits."""
    runner = CliRunner()
    out = runner.invoke(commands, ["inspect", str(cassette)])
    assert out.exit_code == 0, out.output
    assert "session mcp " in out.stdout and "user user_123" in out.stdout
    for label in ("initialize", "tools/list", "browser_session_create", "browser_session_act goto"):
        assert label in out.stdout
    assert "capture_metadata http://" in out.stdout

    out = runner.invoke(commands, ["audit", "--json", str(cassette)])
    assert out.exit_code == 0, out.output
    [mcp] = json.loads(out.stdout)["mcpSessions"]
    assert mcp["user"] == "user_123" and mcp["captures"] == 1
    assert mcp["credits"] == 1 and mcp["credits_source"] == "billed"
    assert len(mcp["browser_sessions"]) == 1
    tools = {t["tool"]: (t["count"], t["errors"]) for t in mcp["tools"]}
    assert tools == {ACT: (6, 1), CLOSE: (1, 0), CREATE: (1, 0), GET: (1, 0), METADATA: (1, 0)}
    text = runner.invoke(commands, ["audit", str(cassette)]).stdout
    assert "1 browser sessions, 1 credits (billed), 1 captures" in text
    assert runner.invoke(commands, ["audit", "--budget", "0", str(cassette)]).exit_code == 4

    with open_cassette(cassette) as opened:
        page = render_report([opened])
    assert 'data-type="browser_session_act"' in page and "browser_session_act screenshot" in page
    assert page.count('class="thumb"') == 1  # the screenshot's MCP image content
    assert "1 credits, 1 sessions, 15 exchanges, 1 failed" in page and "1 credits</span>" in page


async def record(emulator: RunningEmulator, page: str, cassette: Path) -> list[Any]:
    async with recording_proxy(emulator.url, cassette) as url:
        return await agent_run(url, page)


async def test_mcp_run_recorded_then_replayed_without_a_browser(emulator, pages, tmp_path):
    cassette = tmp_path / "agent.msgpack"
    page = pages.url("/counter")
    live = await record(emulator, page, cassette)
    assert live[0][:2] == [CREATE, ACT]
    assert json.loads(live[5]["content"][0]["text"])["elements"][0]["text"] == "2"
    assert [b["type"] for b in live[6]["content"]] == ["text", "image"]
    assert live[7]["isError"] is True  # recorded as a tool error, replayed as one
    with open_cassette(cassette) as recorded:
        exchanges = [recorded.load(e) for e in recorded.entries]
    calls = [
        call.tool
        for x in exchanges
        for call in mcp_calls(x.request.body, x.response.headers, x.response.body)
        if call.tool
    ]
    assert calls == [CREATE, ACT, ACT, ACT, ACT, ACT, ACT, GET, CLOSE, METADATA]
    assert {x.user for x in exchanges} == {"user_123"}
    first, *rest = exchanges
    session = first.response.header("mcp-session-id")
    assert session and all(x.request.header("mcp-session-id") == session for x in rest)
    answers = [x.response for x in rest if x.request.method == "POST" and x.response.status == 200]
    assert len(answers) == 11 and {a.header("content-type") for a in answers} == {EVENT_STREAM}
    check_commands(cassette)
    await pages.stop()  # neither the page nor a browser is needed to replay

    server = await RunningEmulator(emulator_config(cassettes=(cassette,), mode=Mode.REPLAY)).start()
    try:
        assert await agent_run(server.url, page) == live
        assert await agent_run(server.url, page) == live  # a second run replays it again
        async with mcp_session(server.url) as mcp:
            sid = json_of(await mcp.call_tool(CREATE, {"maxTtlSeconds": 120}))["sessionId"]
            assert sid.startswith("sess_")
            await mcp.call_tool(ACT, {"sessionId": sid, "type": "goto", "payload": {"url": page}})
            missed = await mcp.call_tool(
                ACT, {"sessionId": sid, "type": "click", "payload": {"selector": "#dec"}}
            )
            assert missed.is_error
            error = json_of(missed)["error"]
            assert "was not recorded in agent.msgpack" in error
            assert (
                "closest: agent.msgpack#" in error
                and '(arguments.payload.selector: "#inc" -> "#dec")' in error
            )
            other = await mcp.call_tool(CREATE, {"maxTtlSeconds": 5})
            assert other.is_error and "arguments.maxTtlSeconds: 120 -> 5" in json_of(other)["error"]
        unmatched = (await server.call("GET", "/__admin/unmatched", token=None))[1]
        assert unmatched["count"] == 2 and unmatched["unmatched"][0]["error"] == error
        journal = (await server.call("GET", "/__admin/requests", token=None))[1]["requests"]
        assert {"miss", "replay agent.msgpack#1"} <= {r["source"] for r in journal}
        assert server.app[BROWSER].launched is False
    finally:
        await server.stop()
