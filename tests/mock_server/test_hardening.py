"""The emulator's edges under hostile use: the admin API cannot be driven by a web page, bad
JSON of every kind is a 400 in the contract's shape, the machine-wide session cap, and finished
sessions forgotten after the retention window (on the manual clock)."""

from __future__ import annotations

import pytest

from mock_server.auth import make_token
from tests.emulator import RunningEmulator, emulator_config


@pytest.fixture
async def bare(tmp_path):
    """An emulator whose tests need no browser page."""
    running = await RunningEmulator(emulator_config(cassette_dir=tmp_path)).start()
    yield running
    await running.stop()


async def test_admin_refuses_another_origin_and_non_json_posts(bare):
    status, body = await bare.call(
        "POST", "/__admin/reset", {}, token=None, headers={"Origin": "http://evil.example"}
    )
    assert (status, body["success"]) == (403, False) and "origin" in body["error"]
    status, body = await bare.call(
        "POST",
        "/__admin/clock/advance",
        token=None,
        raw=b'{"seconds": 60}',
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415 and "application/json" in body["error"]
    same_origin = {"Origin": bare.url}
    status, _ = await bare.call("POST", "/__admin/reset", {}, token=None, headers=same_origin)
    assert status == 200


async def test_admin_token_is_required_when_set(tmp_path):
    server = await RunningEmulator(emulator_config(admin_token="adm1n-t0ken")).start()
    try:
        status, body = await server.call("GET", "/__admin/health", token=None)
        assert status == 401 and "admin token" in body["error"]
        status, body = await server.call("GET", "/__admin/health", token="Bearer adm1n-t0ken")
        assert status == 200 and body["status"] == "ready"
    finally:
        await server.stop()


async def test_admin_cassettes_load_only_below_the_cassette_dir(bare, tmp_path):
    outside = tmp_path.parent / "elsewhere.msgpack"
    for name in (str(outside), "../elsewhere.msgpack", "/etc/passwd", "/no/such/file"):
        status, body = await bare.call(
            "POST", "/__admin/cassettes", {"cassettes": [name]}, token=None
        )
        assert status == 400 and "only from below" in body["error"], name
        assert "exist" not in body["error"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"seconds": NaN}',
        b'{"seconds": Infinity}',
        b'{"seconds": -Infinity}',
        b'{"seconds": 1e300}',
        b'{"seconds": -1}',
    ],
)
async def test_clock_advance_refuses_what_is_not_a_sane_number(bare, raw):
    status, body = await bare.call(
        "POST",
        "/__admin/clock/advance",
        token=None,
        raw=raw,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and body["success"] is False
    _, clock = await bare.call("GET", "/__admin/clock", token=None)
    assert clock["now"] == bare.config.manual_clock_start


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"maxTtlSeconds": 60, "x": "\\ud800"}', "lone surrogate"),
        (b"null", "must be a JSON object"),
        (b'{"maxTtlSeconds": NaN}', "NaN"),
    ],
)
async def test_bad_json_on_create_is_a_400(bare, raw, error):
    status, body = await bare.call(
        "POST", "/v1/sessions", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400 and error in body["error"], body


async def test_the_machine_wide_session_cap_answers_429_naming_the_local_limit():
    server = await RunningEmulator(emulator_config(max_total_sessions=2)).start()
    try:
        await server.create(token=make_token("alice", "x"))
        await server.create(token=make_token("bob", "x"))
        status, body = await server.call("POST", "/v1/sessions", {}, token=make_token("carol", "x"))
        assert status == 429 and "--max-total-sessions 2" in body["error"]
        assert body["success"] is False and "local capture-replay server" in body["error"]
    finally:
        await server.stop()


async def test_finished_sessions_are_forgotten_after_the_retention_window(tmp_path):
    server = await RunningEmulator(emulator_config(keep_closed=600)).start()
    try:
        sid = (await server.create())["id"]
        await server.close(sid)
        await server.advance(599)
        assert (await server.get(sid))["status"] == "closed"
        await server.advance(2)
        status, _ = await server.call("GET", f"/v1/sessions/{sid}")
        assert status == 404
        _, usage = await server.call("GET", "/__admin/usage", token=None)
        assert usage["users"]["user_123"]["creditsBilled"] == 1  # still counted
    finally:
        await server.stop()
