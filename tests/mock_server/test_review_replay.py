"""Edited and pruned cassettes replay: a recorded `query` answer turned into an empty result in
the exported JSON, imported and replayed through the official SDK (the README's worked example);
a pruned cassette still replays. What replay never served: `GET /__admin/unused` since start or
the last reset, and `serve`'s summary line per cassette on shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sys
from pathlib import Path

import aiohttp
from capture import Capture
from click.testing import CliRunner

from mock_server.cli import main
from mock_server.config import Mode
from recorder.cassette import open_cassette
from tests.emulator import RunningEmulator, emulator_config

ROOT = Path(__file__).resolve().parents[2]
COUNTER = ROOT / "cassettes" / "examples" / "counter-flow.msgpack"
PAGE = "http://127.0.0.1:8765/counter"


def cli(*args: object) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


async def clicked_twice(server: RunningEmulator, sid: str) -> None:
    """The counter example's steps before its query: the page, two clicks on `#inc`."""
    await server.act(sid, "goto", {"url": PAGE})
    await server.act(sid, "click", {"selector": "#inc"})
    await server.act(sid, "click", {"selector": "#inc"})


async def replaying(path: Path) -> RunningEmulator:
    return await RunningEmulator(emulator_config(mode=Mode.REPLAY, cassettes=(path,))).start()


async def test_a_hand_edited_empty_query_result_replays_through_the_sdk(tmp_path, monkeypatch):
    document = json.loads(cli("export", COUNTER))
    query = next(i for i in document["interactions"] if i["actionType"] == "query")
    answer = json.loads(query["response"]["body"]["text"])
    answer.update(elements=[], count=0, totalCount=0)
    query["response"]["body"] = {"json": answer}  # as the README edits it
    edited = tmp_path / "counter-flow.json"
    edited.write_text(json.dumps(document, indent=2))
    cassette = tmp_path / "empty-count.msgpack"
    cli("import", edited, "-o", cassette)

    server = await replaying(cassette)
    monkeypatch.setattr(Capture, "EDGE_URL", server.url)
    try:
        sdk = Capture("user_123", "secret")
        sid = (await sdk.sessions.create({"maxTtlSeconds": 300}))["session"]["id"]
        await sdk.sessions.action(sid, "goto", {"url": PAGE})
        await sdk.sessions.action(sid, "click", {"selector": "#inc"})
        await sdk.sessions.action(sid, "click", {"selector": "#inc"})
        found = await sdk.sessions.action(sid, "query", {"selector": "#count"})
        assert found["elements"] == [] and found["count"] == 0 and found["success"] is True
        closed = await sdk.sessions.close(sid)
        assert closed["session"]["status"] == "closed"
    finally:
        await server.stop()


async def unused(server: RunningEmulator) -> list[dict]:
    status, data = await server.call("GET", "/__admin/unused", token=None)
    assert status == 200 and data["count"] == len(data["unused"])
    return data["unused"]


async def test_admin_unused_lists_what_replay_never_served_until_reset(tmp_path):
    path = tmp_path / "counter-flow.msgpack"
    shutil.copy(COUNTER, path)
    server = await replaying(path)
    try:
        assert [u["seq"] for u in await unused(server)] == list(range(1, 10))
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        await clicked_twice(server, sid)
        await server.act(sid, "query", {"selector": "#count"})
        await server.close(sid)
        left = await unused(server)
        assert left[0] == {
            "cassette": str(path),
            "seq": 6,
            "method": "POST",
            "path": "/v1/sessions/sess_c76e3410-1a79-405f-a8e1-ff1f1cc335c1/actions",
            "action": "screenshot",
        }
        assert [(u["seq"], u["action"] or u["method"]) for u in left] == [
            (6, "screenshot"),
            (7, "content"),
            (8, "GET"),
        ]
        status, _ = await server.call("POST", "/__admin/reset", {}, token=None)
        assert status == 200
        assert len(await unused(server)) == 9
    finally:
        await server.stop()


async def test_a_pruned_cassette_still_replays(tmp_path):
    path = tmp_path / "counter-flow.msgpack"
    shutil.copy(COUNTER, path)
    cli("prune", path, "--drop", "6,7,8")
    with open_cassette(path) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 2, 3, 4, 5, 9]
    server = await replaying(path)
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        await clicked_twice(server, sid)
        assert (await server.act(sid, "query", {"selector": "#count"}))["elements"] == [
            {"text": "2"}
        ]
        status, miss = await server.call(
            "POST", f"/v1/sessions/{sid}/actions", {"type": "screenshot", "payload": {}}
        )
        assert status == 502 and "was not recorded" in miss["error"]
        await server.close(sid)
        assert await unused(server) == []
    finally:
        await server.stop()


async def _read_until(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    seen = []
    while True:
        line = (await stream.readline()).decode()
        assert line, f"stream ended before {pattern!r}: {seen}"
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found


async def test_serve_prints_a_summary_line_per_cassette_on_shutdown(tmp_path):
    paths = [tmp_path / "counter-flow.msgpack", tmp_path / "oneshot.msgpack"]
    shutil.copy(COUNTER, paths[0])
    shutil.copy(ROOT / "cassettes" / "examples" / "oneshot.msgpack", paths[1])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mock_server.cli",
        "serve",
        "--port",
        "0",
        "--clock",
        "manual",
        *(arg for p in paths for arg in ("--cassette", str(p))),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        url = (await asyncio.wait_for(_read_until(proc.stderr, r"on (http://\S+)"), 30)).group(1)
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": "Bearer dXNlcl8xMjM6c2VjcmV0"}
            async with http.post(
                f"{url}/v1/sessions", json={"maxTtlSeconds": 300}, headers=headers
            ) as resp:
                assert resp.status == 201
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    lines = [x for x in err.decode().splitlines() if x.startswith("unused: ")]
    assert lines == [
        "unused: counter-flow.msgpack: 1 of 9 exchanges served; never served: #2 goto, #3 click, "
        "#4 click, #5 query, #6 screenshot, #7 content, #8 GET session, #9 DELETE session",
        "unused: oneshot.msgpack: 0 of 5 exchanges served; never served: "
        "#1 GET /demo/<redacted>/image, #2 GET /demo/<redacted>/pdf, "
        "#3 GET /demo/<redacted>/content, #4 GET /demo/<redacted>/metadata, "
        "#5 GET /demo/<redacted>/animated",
    ]


async def test_the_readme_hand_written_example_imports_and_replays(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("A hand-written file needs only this:\n\n```json\n", 1)[1]
    source = tmp_path / "hand.json"
    source.write_text(block.split("```", 1)[0], encoding="utf-8")
    cassette = tmp_path / "hand.msgpack"
    cli("import", source, "-o", cassette)
    server = await replaying(cassette)
    try:
        sid = (await server.create({}))["id"]
        assert (await server.act(sid, "title"))["title"] == "Made by hand"
        await server.close(sid)
    finally:
        await server.stop()


async def test_the_readme_worked_example_edit_applies_verbatim_to_the_export(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("**Worked example: a `query` that finds nothing.**", 1)[1]
    old, new = (b.split("```", 1)[0] for b in example.split("```json\n")[1:3])
    exported = cli("export", COUNTER)
    assert exported.count(old) == 1  # as `export` writes it, indentation included
    edited = tmp_path / "counter.json"
    edited.write_text(exported.replace(old, new.rstrip("\n") + "\n"), encoding="utf-8")
    cassette = tmp_path / "empty-count.msgpack"
    cli("import", edited, "-o", cassette)
    server = await replaying(cassette)
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        await clicked_twice(server, sid)
        found = await server.act(sid, "query", {"selector": "#count"})
        assert (found["count"], found["elements"]) == (0, [])
    finally:
        await server.stop()
