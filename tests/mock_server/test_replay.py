"""Replay and hybrid modes: record a real flow through the recording proxy in front of the live
emulator, then replay it with the upstream gone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mock_server.auth import make_token
from mock_server.cli import main
from mock_server.config import Exhausted, Mode
from mock_server.state import BROWSER
from tests.contract.schemas import validate
from tests.emulator import TOKEN, ApiClient, RunningEmulator, emulator_config
from tests.replay import recording_proxy

# Answers whose recorded counterpart carries another session id.
Exchange = tuple[str, str, object]


async def record_flow(pages, cassette: Path) -> list[tuple[int, dict]]:
    """Create, goto, click twice, query, content, screenshot, an invalid action, get, an unknown
    session, close: through the proxy in front of the live emulator (manual clock)."""
    live = await RunningEmulator(emulator_config()).start()
    try:
        async with recording_proxy(live.url, cassette) as proxy_url, ApiClient(proxy_url) as client:
            return await run_flow(client, pages.url("/counter"))
    finally:
        await live.stop()


async def run_flow(client: ApiClient, page_url: str) -> list[tuple[int, dict]]:
    answers = []
    status, body = await client.call("POST", "/v1/sessions", {"maxTtlSeconds": 300})
    answers.append((status, body))
    sid = body["session"]["id"]
    steps = [
        ("goto", {"url": page_url}),
        ("click", {"selector": "#inc"}),
        ("query", {"selector": "#count"}),
        ("click", {"selector": "#inc"}),
        ("query", {"selector": "#count"}),
        ("content", {"format": "text"}),
        ("screenshot", {}),
        ("goto", {"url": page_url, "waitUntil": "never"}),
    ]
    for action_type, payload in steps:
        answers.append(
            await client.call(
                "POST", f"/v1/sessions/{sid}/actions", {"type": action_type, "payload": payload}
            )
        )
    answers.append(await client.call("GET", f"/v1/sessions/{sid}"))
    answers.append(await client.call("GET", "/v1/sessions/sess_does_not_exist"))
    answers.append(await client.call("DELETE", f"/v1/sessions/{sid}"))
    return answers


def without_ids(answers: list[tuple[int, dict]]) -> list[tuple[int, str]]:
    """Answers with the flow's session id blanked, as comparable text."""
    sid = answers[0][1]["session"]["id"]
    return [
        (status, json.dumps(body, sort_keys=True).replace(sid, "SID")) for status, body in answers
    ]


@pytest.fixture
async def recorded(pages, tmp_path) -> tuple[Path, list[tuple[int, dict]]]:
    cassette = tmp_path / "flow.msgpack"
    answers = await record_flow(pages, cassette)
    await pages.stop()  # the upstream is gone: replay must not need it
    return cassette, answers


async def replay_server(cassette: Path, **overrides) -> RunningEmulator:
    overrides.setdefault("mode", Mode.REPLAY)
    return await RunningEmulator(emulator_config(cassettes=(cassette,), **overrides)).start()


async def test_replay_answers_the_recorded_flow_in_order_without_a_browser(recorded, pages):
    cassette, live_answers = recorded
    server = await replay_server(cassette)
    try:
        replayed = await run_flow(server, pages.url("/counter"))
        assert [s for s, _ in replayed] == [
            201,
            200,
            200,
            200,
            200,
            200,
            200,
            200,
            400,
            200,
            404,
            200,
        ]
        # Same clock start, no advance: even the time fields agree; only the id is fresh.
        assert without_ids(replayed) == without_ids(live_answers)
        assert replayed[0][1]["session"]["id"] != live_answers[0][1]["session"]["id"]
        assert [b["elements"][0]["text"] for s, b in replayed if "elements" in b] == ["1", "2"]
        browser = server.app[BROWSER]
        assert browser.launched is False and browser.browser_pids() == []
        status, journal = await server.call("GET", "/__admin/requests", token=None)
        assert [r["source"].split()[0] for r in journal["requests"]][:3] == ["replay"] * 3
    finally:
        await server.stop()


async def test_two_clients_replay_one_recording_interleaved(recorded, pages):
    cassette, live_answers = recorded
    server = await replay_server(cassette)
    try:
        async with ApiClient(server.url) as a, ApiClient(server.url) as b:
            results = await asyncio.gather(
                run_flow(a, pages.url("/counter")), run_flow(b, pages.url("/counter"))
            )
        first, second = results
        assert first[0][1]["session"]["id"] != second[0][1]["session"]["id"]
        assert without_ids(first) == without_ids(live_answers) == without_ids(second)
    finally:
        await server.stop()


async def test_miss_names_the_request_the_cassette_and_the_closest_exchange(recorded, pages):
    cassette, _ = recorded
    server = await replay_server(cassette)
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        status, body = await server.call(
            "POST",
            f"/v1/sessions/{sid}/actions",
            {"type": "goto", "payload": {"url": "http://elsewhere.test/"}},
        )
        assert status == 502 and server.last_headers["X-Capture-Replay"] == "miss"
        validate(body, "ErrorResponse")
        assert (
            f"POST /v1/sessions/{sid}/actions (goto) was not recorded in flow.msgpack"
            in body["error"]
        )
        closest = body["closest"][0]
        assert closest["actionType"] == "goto"
        assert any(
            d.startswith('body.payload.url: "http://127.0.0.1:')
            and d.endswith('-> "http://elsewhere.test/"')
            for d in closest["differences"]
        )
        assert "secret" not in json.dumps(body) and TOKEN.split()[1] not in json.dumps(body)
        status, unmatched = await server.call("GET", "/__admin/unmatched", token=None)
        assert unmatched["count"] == 1 and unmatched["unmatched"][0]["session"] == sid
        # An unrecorded create body is a miss too.
        status, body = await server.call("POST", "/v1/sessions", {"maxTtlSeconds": 60})
        assert status == 502 and "POST /v1/sessions was not recorded" in body["error"]
    finally:
        await server.stop()


async def test_exhausted_error_turns_an_extra_repeat_into_a_miss(recorded, pages):
    cassette, _ = recorded
    server = await replay_server(cassette, exhausted=Exhausted.ERROR)
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        for _ in range(2):
            await server.act(sid, "click", {"selector": "#inc"})
        status, body = await server.call(
            "POST",
            f"/v1/sessions/{sid}/actions",
            {"type": "click", "payload": {"selector": "#inc"}},
        )
        assert status == 502 and "asked 3 times but recorded only 2 times" in body["error"]
    finally:
        await server.stop()


async def test_ttl_expiry_limit_and_billing_hold_in_replay(recorded, pages):
    cassette, _ = recorded
    server = await replay_server(cassette)
    try:
        ids = [(await server.create({"maxTtlSeconds": 300}))["id"] for _ in range(5)]
        assert len(set(ids)) == 5
        status, body = await server.call("POST", "/v1/sessions", {"maxTtlSeconds": 300})
        assert status == 429 and body["activeSessionCount"] == 5
        first = await server.act(ids[0], "goto", {"url": pages.url("/counter")})
        await server.advance(120)
        assert (await server.act(ids[0], "click", {"selector": "#inc"}))["expiresInSeconds"] == 180
        assert first["expiresInSeconds"] == 300
        await server.advance(180)
        late = await server.act(ids[0], "click", {"selector": "#inc"}, expect=409)
        assert late["session"]["status"] == "expired" and late["session"]["billedCredits"] == 5
        closed = await server.get(ids[1])
        assert (closed["status"], closed["billedCredits"], closed["durationSeconds"]) == (
            "expired",
            5,
            300,
        )
        await server.create({"maxTtlSeconds": 300})  # expiry freed the slots
    finally:
        await server.stop()


async def test_two_replays_with_a_manual_clock_are_byte_identical(recorded, pages):
    cassette, _ = recorded
    raws = []
    for _ in range(2):
        server = await replay_server(cassette)
        try:
            run = []
            status, body = await server.call("POST", "/v1/sessions", {"maxTtlSeconds": 300})
            run.append((status, server.last_raw, server.last_headers["Date"]))
            sid = body["session"]["id"]
            for action_type, payload in [
                ("goto", {"url": pages.url("/counter")}),
                ("screenshot", {}),
            ]:
                await server.advance(7)
                status, _ = await server.call(
                    "POST", f"/v1/sessions/{sid}/actions", {"type": action_type, "payload": payload}
                )
                run.append((status, server.last_raw, server.last_headers["Date"]))
            raws.append(run)
        finally:
            await server.stop()
    assert raws[0] == raws[1]
    assert b'"expiresInSeconds":286' in raws[0][2][1]


async def test_hybrid_continues_live_with_the_page_rebuilt(recorded, pages, tmp_path):
    cassette, _ = recorded
    await pages.start()  # hybrid runs the rest live: the page must be reachable again
    recorded_url = pages.url("/counter")
    # The pages server now listens on another port; record-time URLs differ, so ignore them.
    server = await replay_server(cassette, mode=Mode.HYBRID, ignore=("payload.url",))
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        await server.act(sid, "goto", {"url": recorded_url})
        await server.act(sid, "click", {"selector": "#inc"})
        await server.act(sid, "click", {"selector": "#inc"})
        assert server.app[BROWSER].launched is False
        # Never recorded: the session continues live, on a page rebuilt by the two clicks.
        answer = await server.act(sid, "query", {"selector": "#count", "fields": ["text", "id"]})
        assert answer["elements"] == [{"text": "2", "id": "count"}]
        assert server.last_headers.get("X-Capture-Replay") is None
        third = await server.act(sid, "click", {"selector": "#inc"})
        assert third["matched"] is True
        after = await server.act(sid, "query", {"selector": "#count"})
        assert after["elements"][0]["text"] == "3"
        status, unmatched = await server.call("GET", "/__admin/unmatched", token=None)
        diverged = unmatched["diverged"][0]
        assert diverged["session"] == sid and diverged["replayedActions"] == 3
        assert "(query)" in diverged["request"]
    finally:
        await server.stop()


async def test_admin_reset_and_cassette_switching(recorded, pages, tmp_path):
    cassette, _ = recorded
    server = await replay_server(cassette, cassette_dir=tmp_path)
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        await server.advance(50)
        status, body = await server.call("POST", "/__admin/reset", {}, token=None)
        assert status == 200
        status, body = await server.call("GET", f"/v1/sessions/{sid}")
        assert status == 404
        again = await server.create({"maxTtlSeconds": 300})
        assert again["id"] == sid  # cursors reset: the same fresh id as the first create
        assert again["expiresAt"] == "2026-01-01T00:05:00.000Z"  # the clock was reset too

        status, body = await server.call(
            "POST",
            "/__admin/cassettes",
            {"cassettes": [str(tmp_path / "missing.msgpack")]},
            token=None,
        )
        assert status == 400 and "missing.msgpack" in body["error"]
        status, body = await server.call(
            "POST",
            "/__admin/cassettes",
            {"cassettes": [str(cassette)], "mode": "replay"},
            token=None,
        )
        assert status == 200 and body["cassettes"] == "flow.msgpack"
    finally:
        await server.stop()


def test_serve_rejects_an_unknown_matcher_with_the_valid_list(tmp_path):
    cassette = tmp_path / "c.msgpack"
    cassette.write_bytes(b"")
    result = CliRunner().invoke(
        main, ["serve", "--cassette", str(cassette), "--match-on", "method,bogus"]
    )
    assert result.exit_code == 2
    assert "unknown matcher 'bogus'" in result.output
    assert "method, path, query, body, action_type" in result.output


def test_serve_reports_a_corrupt_cassette_in_one_line(tmp_path):
    cassette = tmp_path / "c.msgpack"
    cassette.write_bytes(b"this is not a cassette")
    result = CliRunner().invoke(main, ["serve", "--cassette", str(cassette), "--port", "0"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "c.msgpack" in result.output
    assert len(result.output.strip().splitlines()) == 1


async def test_replay_maps_users_like_the_cloud(recorded, pages):
    cassette, _ = recorded
    server = await replay_server(cassette)
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        status, body = await server.call(
            "GET", f"/v1/sessions/{sid}", token=make_token("someone_else", "x")
        )
        assert (status, body["error"]) == (404, "Session not found")
    finally:
        await server.stop()


async def test_latency_option_delays_replayed_answers(recorded, pages):
    cassette, _ = recorded
    server = await replay_server(cassette, latency=150.0)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.create({"maxTtlSeconds": 300})
        assert loop.time() - started >= 0.15
    finally:
        await server.stop()
