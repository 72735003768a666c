"""The sessions API over real sockets and real Chromium: shapes, lifetime, limits, billing, auth,
and bad input. Time moves only through the manual clock."""

from __future__ import annotations

import asyncio
import base64
import os
import signal

import pytest

from mock_server.auth import make_token
from mock_server.state import BROWSER, REGISTRY
from tests.contract.schemas import validate
from tests.emulator import RunningEmulator, emulator_config


async def test_create_get_close_flow_matches_contract(emulator, pages):
    created = await emulator.create({"maxTtlSeconds": 300})
    assert created["id"].startswith("sess_")
    assert created["status"] == "active"
    assert created["maxTtlSeconds"] == 300
    assert created["expiresAt"] == "2026-01-01T00:05:00.000Z"
    sid = created["id"]

    goto = await emulator.act(sid, "goto", {"url": pages.url("/")})
    assert goto["url"] == pages.url("/")
    assert goto["expiresInSeconds"] == 300

    shot = await emulator.act(sid, "screenshot", {"fullPage": True})
    assert base64.b64decode(shot["bodyBase64"])[:8] == b"\x89PNG\r\n\x1a\n"

    session = await emulator.get(sid)
    assert session["billedCredits"] is None
    assert session["actionCount"] == 2
    assert session["actionBreakdown"] == {
        "goto": {"total": 1, "success": 1, "error": 0},
        "screenshot": {"total": 1, "success": 1, "error": 0},
    }
    assert session["options"] == {
        "maxTtlSeconds": 300,
        "proxy": False,
        "bypassBotDetection": False,
        "cdp": False,
    }

    await emulator.advance(61)
    closed = await emulator.close(sid)
    assert closed["status"] == "closed"
    assert closed["closeReason"] == "closed"
    assert closed["durationSeconds"] == 61
    assert closed["billedCredits"] == 2

    # Idempotent: a second close answers the same and bills nothing more.
    assert await emulator.close(sid) == closed
    assert await emulator.get(sid) == closed
    status, usage = await emulator.call("GET", "/__admin/usage", token=None)
    assert usage["users"]["user_123"]["creditsBilled"] == 2


async def test_expires_in_counts_down_and_expiry_bills_the_ttl(emulator, pages):
    sid = (await emulator.create({"maxTtlSeconds": 300}))["id"]
    first = await emulator.act(sid, "title")
    await emulator.advance(100.5)
    second = await emulator.act(sid, "url")
    assert (first["expiresInSeconds"], second["expiresInSeconds"]) == (300, 200)

    await emulator.advance(200)  # TTL reached: expiry happens on the advance
    session = await emulator.get(sid)
    assert session["status"] == "expired"
    assert session["billedCredits"] == 5
    assert session["durationSeconds"] == 300

    late = await emulator.act(sid, "title", expect=409)
    assert late["session"]["status"] == "expired"
    assert late["expiresInSeconds"] == 0
    # Closing an expired session is idempotent and does not bill again.
    assert (await emulator.close(sid))["billedCredits"] == 5


async def test_sixth_session_gets_429_and_expiry_frees_the_slot(emulator):
    ids = [(await emulator.create({"maxTtlSeconds": 60}))["id"] for _ in range(5)]
    status, body = await emulator.call("POST", "/v1/sessions", {})
    assert status == 429
    validate(body, "SessionLimitErrorResponse")
    assert body["activeSessionCount"] == 5 and body["maxConcurrentSessions"] == 5

    # Another user is not limited by user_123's sessions.
    await emulator.create({}, token=make_token("other", "pw"))

    await emulator.advance(60)
    for sid in ids:
        assert (await emulator.get(sid))["status"] == "expired"
    await emulator.create({})


async def test_a_session_is_visible_to_its_user_only(emulator):
    sid = (await emulator.create())["id"]
    other = make_token("mallory", "x")
    for method, path in (
        ("GET", f"/v1/sessions/{sid}"),
        ("DELETE", f"/v1/sessions/{sid}"),
        ("POST", f"/v1/sessions/{sid}/actions"),
    ):
        body = {"type": "title"} if method == "POST" else None
        status, data = await emulator.call(method, path, body, token=other)
        assert (status, data) == (404, {"success": False, "error": "Session not found"})
    assert (await emulator.get(sid))["status"] == "active"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"maxTtlSeconds": 0}, "at least 1"),
        ({"maxTtlSeconds": "300"}, "must be an integer"),
        ({"maxTtlSeconds": 30.5}, "must be an integer"),
        ({"maxTtlSeconds": True}, "must be an integer"),
        ({"ttl": 5}, "unknown field"),
        (
            {"cdp": True, "bypassBotDetection": True},
            "cdp cannot be combined with bypassBotDetection",
        ),
        ({"proxy": "yes"}, "must be a boolean"),
        ([1, 2], "JSON object"),
    ],
)
async def test_create_rejects_invalid_options(emulator, body, message):
    status, data = await emulator.call("POST", "/v1/sessions", body)
    assert status == 400
    validate(data, "ErrorResponse")
    assert message in data["error"]


async def test_create_caps_ttl_and_accepts_empty_and_php_bodies(emulator):
    assert (await emulator.create({"maxTtlSeconds": 5000}))["maxTtlSeconds"] == 900
    assert (await emulator.create())["maxTtlSeconds"] == 300  # the documented default
    assert (await emulator.create([]))["maxTtlSeconds"] == 300  # PHP's json_encode([])
    echoed = await emulator.create({"proxy": True, "bypassBotDetection": True})
    assert (echoed["proxy"], echoed["bypassBotDetection"]) == (True, True)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "Basic abc",
        "Bearer",
        "Bearer !!!notbase64",
        "Bearer " + base64.b64encode(b"nocolon").decode(),
    ],
)
async def test_missing_or_malformed_credentials_get_401(emulator, token):
    status, data = await emulator.call("POST", "/v1/sessions", {}, token=token)
    assert status == 401
    validate(data, "ErrorResponse")


async def test_users_file_checks_secrets(pages):
    running = await RunningEmulator(emulator_config(users={"user_123": "secret"})).start()
    try:
        status, _ = await running.call(
            "POST", "/v1/sessions", {}, token=make_token("user_123", "wrong")
        )
        assert status == 401
        status, _ = await running.call(
            "POST", "/v1/sessions", {}, token=make_token("nobody", "secret")
        )
        assert status == 401
        await running.create()
    finally:
        await running.stop()


async def test_bad_input_always_gets_a_json_error(emulator):
    sid = (await emulator.create())["id"]
    cases = [
        ("POST", "/v1/sessions", b"{not json", 400),
        ("POST", f"/v1/sessions/{sid}/actions", b'{"type": ', 400),
        ("POST", f"/v1/sessions/{sid}/actions", b"", 400),
        ("POST", f"/v1/sessions/{sid}/actions", b"[]", 400),
        ("POST", f"/v1/sessions/{sid}/actions", b'{"type": "fly"}', 400),
        ("POST", f"/v1/sessions/{sid}/actions", b'{"type": "title", "extra": 1}', 400),
        ("POST", f"/v1/sessions/{sid}/actions", b'{"type": "title", "payload": "x"}', 400),
        ("POST", f"/v1/sessions/{sid}/actions", b"\xff\xfe\x00", 400),
        ("GET", "/nope", None, 404),
        ("GET", "/v1/sessions/sess_unknown", None, 404),
        ("PUT", "/v1/sessions", b"{}", 405),
        ("POST", "/v1/sessions", b"{" + b" " * (9 * 1024 * 1024) + b"}", 413),
    ]
    for method, path, raw, expected in cases:
        status, data = await emulator.call(method, path, raw=raw)
        assert status == expected, (method, path, data)
        assert data["success"] is False and isinstance(data["error"], str), data
        assert "Traceback" not in data["error"]
        if path.endswith("/actions"):
            assert isinstance(data["expiresInSeconds"], int)


async def test_invalid_action_is_400_with_expires_in_and_counted(emulator, pages):
    sid = (await emulator.create())["id"]
    await emulator.advance(10)
    bad = await emulator.act(sid, "goto", {"url": pages.url("/"), "waitUntil": "never"}, expect=400)
    assert bad["expiresInSeconds"] == 290
    session = await emulator.get(sid)
    assert session["actionErrorCount"] == 1
    assert session["actionBreakdown"]["goto"] == {"total": 1, "success": 0, "error": 1}


async def test_action_over_budget_is_504_and_session_survives(pages):
    running = await RunningEmulator(emulator_config(action_timeout=1.0)).start()
    try:
        sid = (await running.create())["id"]
        await running.act(sid, "goto", {"url": pages.url("/slow?s=30")}, expect=504)
        again = await running.act(sid, "goto", {"url": pages.url("/counter")})
        assert again["url"] == pages.url("/counter")
    finally:
        await running.stop()


async def test_sessions_run_concurrently_and_actions_of_one_session_in_order(emulator, pages):
    a, b = [(await emulator.create())["id"] for _ in range(2)]
    await asyncio.gather(
        emulator.act(a, "goto", {"url": pages.url("/counter")}),
        emulator.act(b, "goto", {"url": pages.url("/form")}),
    )
    clicks = [emulator.act(a, "click", {"selector": "#inc"}) for _ in range(5)]
    await asyncio.gather(*clicks)
    q = await emulator.act(a, "query", {"selector": "#count"})
    assert q["elements"][0]["text"] == "5"
    assert (await emulator.act(b, "title"))["title"] == "Login form"


async def test_real_clock_refuses_advance():
    running = await RunningEmulator(emulator_config(clock="real")).start()
    try:
        status, data = await running.call(
            "POST", "/__admin/clock/advance", {"seconds": 5}, token=None
        )
        assert status == 409 and "--clock manual" in data["error"]
    finally:
        await running.stop()


async def test_admin_routes_report_health_sessions_and_usage(emulator):
    status, health = await emulator.call("GET", "/__admin/health", token=None)
    assert status == 200 and health["status"] == "ready"
    sid = (await emulator.create())["id"]
    status, listing = await emulator.call("GET", "/__admin/sessions", token=None)
    assert [s["id"] for s in listing["sessions"]] == [sid]
    assert listing["sessions"][0]["user"] == "user_123"
    status, usage = await emulator.call("GET", "/__admin/usage", token=None)
    assert usage["users"] == {
        "user_123": {"sessions": 1, "active": 1, "creditsBilled": 0, "actions": 0}
    }


async def test_devices_list(emulator):
    status, data = await emulator.call("GET", "/screenshot/devices", token=None)
    assert status == 200 and data["count"] == len(data["devices"]) > 5
    keys = {d["key"] for d in data["devices"]}
    assert {"iphone_15_pro", "pixel_8", "ipad", "desktop_hd"} <= keys


async def test_no_browser_answers_503_with_how_to_fix_and_the_server_stays_up(tmp_path):
    running = await RunningEmulator(
        emulator_config(browser=str(tmp_path / "no-such-chromium"))
    ).start()
    try:
        status, body = await running.call("POST", "/v1/sessions", {})
        assert status == 503
        validate(body, "ErrorResponse")
        assert "apt-get install -y chromium" in body["error"]
        assert "CAPTURE_REPLAY_BROWSER" in body["error"]
        status, health = await running.call("GET", "/__admin/health", token=None)
        assert status == 200
        # The slot reserved for the failed create was given back.
        status, usage = await running.call("GET", "/__admin/usage", token=None)
        assert usage["users"] == {}
    finally:
        await running.stop()


async def test_a_crashed_browser_ends_its_sessions_in_error_and_is_relaunched(emulator, pages):
    sid = (await emulator.create())["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    browser = emulator.app[BROWSER]
    root = browser.browser_pids()[0]
    disconnected = asyncio.Event()
    emulator.app[REGISTRY].get(sid, "user_123").page.context.browser.on(
        "disconnected", lambda _: disconnected.set()
    )
    os.kill(root, signal.SIGKILL)
    await asyncio.wait_for(disconnected.wait(), 10)
    gone = await emulator.act(sid, "title", expect=503)
    assert gone["session"]["status"] == "error" and gone["session"]["billedCredits"] == 1
    assert (await emulator.get(sid))["status"] == "error"
    again = (await emulator.create())["id"]
    answer = await emulator.act(again, "goto", {"url": pages.url("/form")})
    assert answer["title"] == "Login form" and browser.browser_pids()[0] != root
