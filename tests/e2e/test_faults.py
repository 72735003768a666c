"""Fault injection against the live emulator on real Chromium: every kind of rule (status, delay,
end_session expire and crash, reset) fires, and the requests a rule lets through run in the
browser; `after`/`times` count exactly under 8 concurrent sessions."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
import pytest

from recorder.statuses import STATUSES, Route
from tests.contract.schemas import validate
from tests.emulator import TOKEN, RunningEmulator, emulator_config
from tests.fault_admin import add_fault, fault_list, journal


async def test_a_403_on_the_next_create_then_sessions_run(emulator, pages):
    await add_fault(emulator, {"method": "POST", "path": "/v1/sessions", "times": 1, "status": 403})
    status, body = await emulator.call("POST", "/v1/sessions", {"maxTtlSeconds": 60})
    assert (status, body) == (403, {"success": False, "error": STATUSES[Route.CREATE][403].text})
    assert emulator.last_headers["X-Capture-Replay"] == "fault"
    sid = (await emulator.create({"maxTtlSeconds": 60}))["id"]
    goto = await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    assert goto["title"] == "Counter"
    entries = await journal(emulator)
    assert [(e["status"], e["source"], e.get("rule")) for e in entries[:2]] == [
        (403, "fault", "fault_1"),
        (201, "live", None),
    ]


async def test_a_504_on_the_third_screenshot(emulator, pages):
    await add_fault(emulator, {"action": "screenshot", "after": 2, "times": 1, "status": 504})
    sid = (await emulator.create({"maxTtlSeconds": 120}))["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    for _ in range(2):
        assert (await emulator.act(sid, "screenshot"))["bodyBase64"]
    timed_out = await emulator.act(sid, "screenshot", expect=504)
    assert timed_out["error"] == "Action timed out" and timed_out["expiresInSeconds"] == 120
    assert timed_out["session"]["id"] == sid and timed_out["session"]["status"] == "active"
    # The session goes on, in the same page.
    await emulator.act(sid, "click", {"selector": "#inc"})
    assert (await emulator.act(sid, "screenshot"))["bodyBase64"]
    count = await emulator.act(sid, "query", {"selector": "#count"})
    assert count["elements"][0]["text"] == "1"
    assert [(r["matched"], r["fired"]) for r in await fault_list(emulator)] == [(4, 1)]


async def test_a_delay_holds_the_answer_alone_or_with_a_status(emulator, pages):
    sid = (await emulator.create({"maxTtlSeconds": 120}))["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    await add_fault(emulator, {"action": "title", "delay_ms": 300})
    await add_fault(emulator, {"action": "url", "delay_ms": 200, "status": 503})
    started = time.monotonic()
    assert (await emulator.act(sid, "title"))["title"] == "Counter"
    assert time.monotonic() - started >= 0.3
    assert emulator.last_headers.get("X-Capture-Replay") != "fault"
    started = time.monotonic()
    failed = await emulator.act(sid, "url", expect=503)
    assert time.monotonic() - started >= 0.2
    assert failed["error"] == STATUSES[Route.ACTION][503].text
    entries = await journal(emulator)
    assert [(e["source"], e.get("rule")) for e in entries[-2:]] == [
        ("live", "fault_1"),
        ("fault", "fault_2"),
    ]


async def test_a_session_expiring_mid_flow_is_billed_and_frees_its_slot(pages):
    server = await RunningEmulator(emulator_config(max_sessions=1)).start()
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        rule = {"session": sid, "path": "/v1/sessions/*/actions", "after": 1}
        await add_fault(server, {**rule, "times": 1, "end_session": "expire"})
        await server.act(sid, "goto", {"url": pages.url("/counter")})
        await server.advance(61)
        late = await server.act(sid, "click", {"selector": "#inc"}, expect=409)
        assert late["session"]["status"] == "expired" and late["session"]["billedCredits"] == 2
        assert late["session"]["closedAt"] == "2026-01-01T00:01:01.000Z"
        await server.act(sid, "title", expect=409)
        # The slot is free again: the one allowed session can be opened, in a working page.
        other = (await server.create({"maxTtlSeconds": 60}))["id"]
        assert (await server.act(other, "goto", {"url": pages.url("/counter")}))["title"]
        status, usage = await server.call("GET", "/__admin/usage", token=None)
        assert usage["users"]["user_123"] == {
            "sessions": 2,
            "active": 1,
            "creditsBilled": 2,
            "actions": 2,
        }
    finally:
        await server.stop()


async def test_a_crash_ends_the_session_with_status_error(emulator, pages):
    sid = (await emulator.create({"maxTtlSeconds": 300}))["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    await add_fault(emulator, {"session": sid, "method": "GET", "times": 1, "end_session": "crash"})
    status, body = await emulator.call("GET", f"/v1/sessions/{sid}")
    assert status == 200 and emulator.last_headers["X-Capture-Replay"] == "fault"
    validate(body, "GetSessionResponse")
    session = body["session"]
    assert (session["status"], session["closeReason"], session["billedCredits"]) == (
        "error",
        "error",
        1,
    )
    await emulator.act(sid, "title", expect=409)
    assert (await emulator.get(sid))["status"] == "error"
    # A new session gets a fresh page.
    other = (await emulator.create({"maxTtlSeconds": 60}))["id"]
    assert (await emulator.act(other, "goto", {"url": pages.url("/counter")}))["title"]


async def test_a_reset_closes_the_connection_without_an_answer(emulator, pages):
    sid = (await emulator.create({"maxTtlSeconds": 120}))["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    await add_fault(emulator, {"action": "title", "times": 2, "reset": True})
    host, port = emulator.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"type": "title", "payload": {}}'
    writer.write(
        f"POST /v1/sessions/{sid}/actions HTTP/1.1\r\nHost: x\r\nAuthorization: {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.post(
                f"{emulator.url}/v1/sessions/{sid}/actions",
                json={"type": "title", "payload": {}},
                headers={"Authorization": TOKEN},
            )
    assert (await emulator.act(sid, "title"))["title"] == "Counter"
    dropped = [e for e in await journal(emulator) if e.get("reset")]
    assert [(e["status"], e["source"], e["rule"]) for e in dropped] == [
        (None, "fault", "fault_1"),
    ] * 2


async def test_after_and_times_count_exactly_under_8_concurrent_sessions(pages):
    server = await RunningEmulator(emulator_config(max_sessions=8, context_pool=0)).start()
    try:
        ids = [
            s["id"]
            for s in await asyncio.gather(
                *(server.create({"maxTtlSeconds": 300}) for _ in range(8))
            )
        ]
        await add_fault(
            server, {"path": "/v1/sessions/*/actions", "after": 5, "times": 10, "status": 503}
        )

        async def flow(sid: str) -> list[int]:
            statuses = []
            for _ in range(4):
                status, _ = await server.call(
                    "POST", f"/v1/sessions/{sid}/actions", {"type": "url", "payload": {}}
                )
                statuses.append(status)
            return statuses

        results = await asyncio.gather(*(flow(sid) for sid in ids))
        assert Counter(s for r in results for s in r) == {200: 22, 503: 10}
        actions = [e for e in await journal(server) if e["path"].endswith("/actions")]
        assert len(actions) == 32
        assert sum(e["source"] == "fault" for e in actions) == 10
        assert [(r["matched"], r["fired"]) for r in await fault_list(server)] == [(32, 10)]
    finally:
        await server.stop()
