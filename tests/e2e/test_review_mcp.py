"""Reviewing, editing and pruning cassettes that hold MCP traffic: an agent's run recorded through
`capture-replay record` in front of a live emulator, then `textconv` (tool calls named, each
server-sent event's JSON pretty-printed, the screenshot summarized), `export` → `import` (the
same export), and replay's account of what it served (`GET /__admin/unused`, `prune`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mock_server.cli import main
from mock_server.config import Mode
from mock_server.state import REPLAY
from recorder.cassette import open_cassette
from recorder.mcp_tools import ACT, CLOSE, CREATE
from tests.emulator import TOKEN, RunningEmulator, emulator_config
from tests.mcp_client import json_of, mcp_session
from tests.replay import recording_proxy

pytestmark = pytest.mark.browser


def cli(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


async def agent(url: str, page: str, *, screenshot: bool = True) -> None:
    async with mcp_session(url) as mcp:
        sid = json_of(await mcp.call_tool(CREATE, {"maxTtlSeconds": 120}))["sessionId"]
        await mcp.call_tool(ACT, {"sessionId": sid, "type": "goto", "payload": {"url": page}})
        if screenshot:
            shot = await mcp.call_tool(ACT, {"sessionId": sid, "type": "screenshot"})
            assert [b.type for b in shot.content] == ["text", "image"]
        await mcp.call_tool(CLOSE, {"sessionId": sid})


async def recorded(emulator: RunningEmulator, page: str, cassette: Path) -> Path:
    async with recording_proxy(emulator.url, cassette) as url:
        await agent(url, page)
    return cassette


async def test_textconv_and_the_json_round_trip_of_an_mcp_run(emulator, pages, tmp_path):
    cassette = await recorded(emulator, pages.url("/counter"), tmp_path / "agent.msgpack")
    text = cli("textconv", cassette)
    with open_cassette(cassette) as opened:
        first = opened.load(opened.entries[0])
    mcp_id = first.response.header("mcp-session-id")
    assert f"  mcp session: {mcp_id}" in text
    for label in ("initialize", f"{CREATE}", f"{ACT} goto", f"{ACT} screenshot", f"{CLOSE}"):
        assert f"  action: {label}\n" in text
    # each event's JSON pretty-printed, a tool's JSON text expanded, the screenshot summarized
    assert "    event: message\n    data:\n" in text
    assert '"billedCredits": 1,' in text and '"closeReason": "closed",' in text
    assert "<image/png, " in text and " px, sha256 " in text
    assert max(len(line) for line in text.splitlines()) < 200
    assert cli("textconv", cassette) == text

    exported = tmp_path / "agent.json"
    cli("export", cassette, "-o", exported)
    again = tmp_path / "again.msgpack"
    cli("import", exported, "-o", again)
    first_export = json.loads(exported.read_text())["interactions"]
    second_export = json.loads(cli("export", again))["interactions"]
    for one, two in zip(first_export, second_export, strict=True):
        assert {**one, "cassette": None} == {**two, "cassette": None}
    assert "1 MCP session" in cli("import", exported, "-o", again)


async def unused(server: RunningEmulator) -> list[dict]:
    status, data = await server.call("GET", "/__admin/unused", token=None)
    assert status == 200
    return data["unused"]


async def test_replayed_mcp_exchanges_count_as_served(emulator, pages, tmp_path):
    page = pages.url("/counter")
    cassette = await recorded(emulator, page, tmp_path / "agent.msgpack")
    server = await RunningEmulator(emulator_config(cassettes=(cassette,), mode=Mode.REPLAY)).start()
    try:
        assert len(await unused(server)) > 5
        await agent(server.url, page, screenshot=False)  # this run no longer takes a screenshot
        left = await unused(server)
    finally:
        await server.stop()
    assert [(u["method"], u["action"]) for u in left] == [("POST", f"{ACT} screenshot")]
    # what `serve` prints once stopped (its cassettes closed) still names the tool call
    [line] = server.app[REPLAY].engine.player.usage.summary()
    assert line.endswith(f"exchanges served; never served: #{left[0]['seq']} {ACT} screenshot")
    with open_cassette(cassette) as opened:
        first = opened.entries[0]  # the initialize: replay needs it for every call of its session
        mcp_id = opened.load(first).response.header("mcp-session-id")
    refused = CliRunner().invoke(main, ["prune", str(cassette), "--drop", str(first.seq)])
    assert refused.exit_code == 1
    assert f"#{first.seq} initializes MCP session {mcp_id}, whose exchanges #" in refused.stderr
    cli("prune", cassette, "--drop", left[0]["seq"])
    server = await RunningEmulator(emulator_config(cassettes=(cassette,), mode=Mode.REPLAY)).start()
    try:
        await agent(server.url, page, screenshot=False)  # the pruned cassette still replays it
        assert await unused(server) == []
    finally:
        await server.stop()


AGENT_TEST = """
import asyncio, json

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def agent(url):
    headers = {{"Authorization": "{token}"}}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url + "/mcp/v1", http_client=http) as (r, w):
            async with ClientSession(r, w) as mcp:
                await mcp.initialize()
                created = await mcp.call_tool("{create}", {{"maxTtlSeconds": 120}})
                sid = json.loads(created.content[0].text)["sessionId"]
                payload = {{"url": "{page}"}}
                goto = {{"sessionId": sid, "type": "goto", "payload": payload}}
                await mcp.call_tool("{act}", goto)
                await mcp.call_tool("{close}", {{"sessionId": sid}})


@pytest.mark.capture(cassette="agent.msgpack")
def test_agent(capture_mock):
    asyncio.run(agent(capture_mock.url))
"""


async def test_pytest_reports_and_prunes_the_tool_calls_no_test_made(emulator, pages, pytester):
    page = pages.url("/counter")
    cassette = pytester.path / "cassettes" / "agent.msgpack"
    cassette.parent.mkdir()
    await recorded(emulator, page, cassette)
    code = AGENT_TEST.format(token=TOKEN, create=CREATE, act=ACT, close=CLOSE, page=page)
    pytester.makepyfile(test_agent=code)
    args = ("-p", "no:cacheprovider", "--capture-prune")
    result = await asyncio.to_thread(pytester.runpytest_subprocess, *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "cassettes/agent.msgpack: 1 of * exchanges unused",
            f"  #* POST /mcp/v1 ({ACT} screenshot)",
            "  pruned: dropped #*; * exchanges kept",
        ]
    )
    again = await asyncio.to_thread(pytester.runpytest_subprocess, *args)
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["cassettes/agent.msgpack: all * exchanges used"])
