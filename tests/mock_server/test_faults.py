"""Fault injection without a browser: the admin API and its validation, rules kept per server,
seeded probability, faults in replay mode (before the cassette, the cursor unmoved), the official
SDK seeing each documented status, and rule files given to `serve --faults`."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from capture import Capture
from capture.client import CaptureSessionsError
from click.testing import CliRunner

from mock_server.auth import make_token
from mock_server.cli import main
from mock_server.config import Exhausted, Mode
from recorder.contract import sign
from recorder.statuses import SESSION, STATUSES, Route
from tests.contract.schemas import validate
from tests.emulator import RunningEmulator, emulator_config
from tests.fault_admin import add_fault, journal
from tests.serve_process import call_json, serve_process

ROOT = Path(__file__).resolve().parents[2]
COUNTER_FLOW = ROOT / "cassettes" / "examples" / "counter-flow.msgpack"
COUNTER = "http://127.0.0.1:8765/counter"  # the page the example cassette recorded
CREATE_BODY = b'{"maxTtlSeconds": 300}'


@pytest.fixture
async def replaying():
    server = RunningEmulator(
        emulator_config(mode=Mode.REPLAY, cassettes=(COUNTER_FLOW,), exhausted=Exhausted.ERROR)
    )
    await server.start()
    yield server
    await server.stop()


async def test_rules_are_added_listed_and_removed(emulator):
    first = await add_fault(emulator, {"method": "POST", "path": "/v1/sessions", "status": 403})
    assert first["id"] == "fault_1" and first["fired"] == 0
    named = await add_fault(emulator, {"id": "slow", "delay_ms": 10})
    assert named["id"] == "slow"
    status, body = await emulator.call("POST", "/__admin/faults", {"id": "slow", "delay_ms": 1})
    assert (status, body["field"]) == (400, "id")
    status, listed = await emulator.call("GET", "/__admin/faults", token=None)
    assert [r["id"] for r in listed["faults"]] == ["fault_1", "slow"]

    status, _ = await emulator.call("POST", "/v1/sessions", {})
    assert status == 403
    status, listed = await emulator.call("GET", "/__admin/faults", token=None)
    assert [(r["matched"], r["fired"]) for r in listed["faults"]] == [(1, 1), (0, 0)]

    status, removed = await emulator.call("DELETE", "/__admin/faults/fault_1", token=None)
    assert status == 200 and removed["removed"]["id"] == "fault_1"
    status, body = await emulator.call("DELETE", "/__admin/faults/fault_1", token=None)
    assert status == 404 and body["success"] is False
    status, body = await emulator.call("DELETE", "/__admin/faults", token=None)
    assert (status, body["removed"]) == (200, 1)

    await add_fault(emulator, {"method": "GET", "status": 500})
    status, _ = await emulator.call("POST", "/__admin/reset", {}, token=None)
    assert status == 200
    status, listed = await emulator.call("GET", "/__admin/faults", token=None)
    assert listed["faults"] == []
    status, _ = await emulator.call("GET", "/v1/sessions/sess_nope")
    assert status == 404


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"status": 500, "color": "red"}, "color"),
        ({"status": 504}, "status"),  # not documented for create or get
        ({"method": "POST", "path": "/v1/sessions", "status": 504}, "status"),
        ({"method": "GET", "path": "/v1/sessions/*", "status": 409}, "status"),
        ({"endpoint": "image", "status": 403}, "status"),
        ({"status": "500"}, "status"),
        ({"status": 500, "times": -1}, "times"),
        ({"status": 500, "after": -3}, "after"),
        ({"status": 500, "after": 1.5}, "after"),
        ({"status": 500, "probability": 1.01}, "probability"),
        ({"status": 500, "probability": -0.1}, "probability"),
        ({"status": 500, "probability": True}, "probability"),
        ({"delay_ms": -1}, "delay_ms"),
        ({"action": "fly", "status": 500}, "action"),
        ({"endpoint": "video", "status": 500}, "endpoint"),
        ({"method": "POST", "path": "/v1/sessions", "end_session": "expire"}, "end_session"),
        ({"path": "/v1/sessions/*/actions", "end_session": "vanish"}, "end_session"),
        ({"reset": False}, "reset"),
        ({"status": 500, "reset": True}, "reset"),
        ({"body": {"a": 1}}, "body"),
        ({"method": "GET"}, "rule"),
        (["status", 500], "rule"),
        ({"path": "", "status": 500}, "path"),
        ({"id": "a b", "delay_ms": 1}, "id"),
        ({"path": "/mcp/v1", "reset": True}, "path"),  # tool calls match their REST request
        ({"path": "/mcp/v1/", "delay_ms": 5}, "path"),
    ],
)
async def test_a_malformed_rule_is_400_naming_the_field(emulator, rule, field):
    status, body = await emulator.call("POST", "/__admin/faults", rule, token=None)
    assert status == 400, body
    assert body["success"] is False and body["field"] == field and field in body["error"]
    status, listed = await emulator.call("GET", "/__admin/faults", token=None)
    assert listed["faults"] == []


async def test_a_rule_never_leaks_into_another_server(emulator):
    other = await RunningEmulator(emulator_config()).start()
    try:
        await add_fault(emulator, {"method": "GET", "status": 500})
        status, listed = await other.call("GET", "/__admin/faults", token=None)
        assert listed["faults"] == []
        assert (await other.call("GET", "/v1/sessions/sess_x"))[0] == 404
        assert (await emulator.call("GET", "/v1/sessions/sess_x"))[0] == 500
    finally:
        await other.stop()


async def draws(seed: int) -> list[int]:
    server = await RunningEmulator(emulator_config(fault_seed=seed)).start()
    try:
        await add_fault(
            server, {"method": "GET", "path": "/v1/sessions/*", "probability": 0.5, "status": 500}
        )
        return [(await server.call("GET", "/v1/sessions/sess_x"))[0] for _ in range(30)]
    finally:
        await server.stop()


async def test_probability_with_a_fixed_seed_gives_the_same_sequence_twice():
    first, again, other = await draws(7), await draws(7), await draws(8)
    assert first == again
    assert set(first) == {404, 500}
    assert other != first


async def test_replay_faults_fire_before_the_cassette_and_leave_the_cursor(replaying):
    created = await replaying.create({"maxTtlSeconds": 300})
    sid = created["id"]
    await replaying.act(sid, "goto", {"url": COUNTER})
    await add_fault(replaying, {"action": "click", "times": 1, "status": 503})
    # An unrecorded request gets the fault, not a miss: the cassette was not consulted.
    await add_fault(replaying, {"action": "url", "status": 500})
    failed = await replaying.act(sid, "click", {"selector": "#inc"}, expect=503)
    assert failed["error"] == STATUSES[Route.ACTION][503].text
    assert failed[SESSION]["id"] == sid and failed["expiresInSeconds"] == 300
    assert replaying.last_headers["X-Capture-Replay"] == "fault"
    await replaying.act(sid, "url", expect=500)
    # Both recorded clicks are still there (--exhausted error would miss a third).
    await replaying.act(sid, "click", {"selector": "#inc"})
    await replaying.act(sid, "click", {"selector": "#inc"})
    count = await replaying.act(sid, "query", {"selector": "#count"})
    assert count["elements"][0]["text"] == "2"
    status, _ = await replaying.call(
        "POST", f"/v1/sessions/{sid}/actions", {"type": "click", "payload": {"selector": "#inc"}}
    )
    assert status == 502  # the third click: the recorded ones are used up
    status, unmatched = await replaying.call("GET", "/__admin/unmatched", token=None)
    assert unmatched["count"] == 1
    entries = await journal(replaying)
    assert [(e["status"], e["source"], e.get("rule")) for e in entries[2:4]] == [
        (503, "fault", "fault_1"),
        (500, "fault", "fault_2"),
    ]
    assert entries[4]["source"].startswith("replay counter-flow.msgpack#")


async def test_a_replayed_session_expires_mid_flow(replaying):
    sid = (await replaying.create({"maxTtlSeconds": 300}))["id"]
    await add_fault(
        replaying,
        {"path": "/v1/sessions/*/actions", "after": 1, "times": 1, "end_session": "expire"},
    )
    await replaying.act(sid, "goto", {"url": COUNTER})
    await replaying.advance(90)
    late = await replaying.act(sid, "click", {"selector": "#inc"}, expect=409)
    assert late["session"]["status"] == "expired" and late["session"]["billedCredits"] == 2
    assert late["expiresInSeconds"] == 0
    assert (await replaying.get(sid))["status"] == "expired"
    status, usage = await replaying.call("GET", "/__admin/usage", token=None)
    assert usage["users"]["user_123"]["active"] == 0


SESSION_CALLS = {
    Route.CREATE: ("POST", "/v1/sessions"),
    Route.GET: ("GET", "/v1/sessions/*"),
    Route.CLOSE: ("DELETE", "/v1/sessions/*"),
    Route.ACTION: ("POST", "/v1/sessions/*/actions"),
}


@pytest.mark.parametrize(
    ("route", "status"),
    [(route, status) for route in SESSION_CALLS for status in STATUSES[route]],
)
async def test_the_sdk_sees_each_documented_status_with_the_contracts_text(
    replaying, monkeypatch, route, status
):
    monkeypatch.setattr(Capture, "EDGE_URL", replaying.url)
    sdk = Capture("user_123", "secret")
    sid = (await sdk.sessions.create({"maxTtlSeconds": 300}))["session"]["id"]
    method, path = SESSION_CALLS[route]
    await add_fault(replaying, {"method": method, "path": path, "times": 1, "status": status})
    calls = {
        Route.CREATE: lambda: sdk.sessions.create({"maxTtlSeconds": 300}),
        Route.GET: lambda: sdk.sessions.get(sid),
        Route.CLOSE: lambda: sdk.sessions.close(sid),
        Route.ACTION: lambda: sdk.sessions.action(sid, "goto", {"url": COUNTER}),
    }
    with pytest.raises(CaptureSessionsError) as err:
        await calls[route]()
    entry = STATUSES[route][status]
    assert err.value.status == status and str(err.value) == entry.text
    body = err.value.body
    if SESSION in entry.extra:
        assert body["session"]["id"] == sid and body["expiresInSeconds"] == 300
    schema = {429: "SessionLimitErrorResponse"}.get(status, "ErrorResponse")
    if route is Route.ACTION and status != 409:
        schema = "ActionErrorResponse"
    validate(body, "InactiveSessionActionResponse" if status == 409 else schema)
    # times 1: the same call now goes through
    assert (await calls[route]())["success"] is True


@pytest.mark.parametrize("status", list(STATUSES[Route.ONESHOT]))
async def test_the_sdk_sees_each_one_shot_status(replaying, monkeypatch, status):
    sdk = Capture("user_123", "secret")
    monkeypatch.setattr(Capture, "API_URL", replaying.url)
    await add_fault(replaying, {"endpoint": "image", "status": status})
    with pytest.raises(aiohttp.ClientResponseError) as err:
        await sdk.fetch_image(COUNTER)
    assert err.value.status == status
    query = f"url={COUNTER}"
    url = f"{replaying.url}/user_123/{sign('secret', query)}/image?{query}"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        body = await resp.json()
        assert resp.headers["X-Capture-Replay"] == "fault"
    assert body == {"success": False, "error": STATUSES[Route.ONESHOT][status].text}


def test_serve_refuses_a_rule_file_it_cannot_parse(tmp_path):
    broken = tmp_path / "faults.yaml"
    broken.write_text("- status: 500\n  method: [GET\n")
    result = CliRunner().invoke(main, ["serve", "--faults", str(broken), "--port", "0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.match(
        rf"Error: {re.escape(str(broken))}:3: not valid YAML", lines[0]
    )

    as_json = tmp_path / "faults.json"
    as_json.write_text('[\n  {"status": 500,\n   "method": }\n]\n')
    result = CliRunner().invoke(main, ["serve", "--faults", str(as_json), "--port", "0"])
    assert result.exit_code == 1 and f"{as_json}:3: not valid JSON" in result.output

    bad_rule = tmp_path / "bad.yaml"
    bad_rule.write_text("- method: GET\n  status: 500\n- method: GET\n  times: -2\n  status: 500\n")
    result = CliRunner().invoke(main, ["serve", "--faults", str(bad_rule), "--port", "0"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {bad_rule}:3: rule 2: Invalid fault rule: times: must not be negative (got -2)"
    )


def test_serve_loads_rules_from_a_file(tmp_path):
    rules = tmp_path / "faults.yaml"
    rules.write_text(
        "- id: next-create\n  method: POST\n  path: /v1/sessions\n  times: 1\n  status: 403\n"
    )
    with serve_process(
        "--cassette", str(COUNTER_FLOW), "--faults", str(rules), "--fault-seed", "3"
    ) as url:
        request = urllib_request(url + "/v1/sessions", CREATE_BODY)
        assert request[0] == 403 and request[1]["error"] == STATUSES[Route.CREATE][403].text
        assert urllib_request(url + "/v1/sessions", CREATE_BODY)[0] == 201
        listed = urllib_request(url + "/__admin/faults", None)[1]
        assert [(r["id"], r["fired"]) for r in listed["faults"]] == [("next-create", 1)]


def urllib_request(url: str, data: bytes | None) -> tuple[int, dict]:
    headers = {
        "Authorization": make_token("user_123", "secret"),
        "Content-Type": "application/json",
    }
    return call_json(url, data, headers)


async def test_hybrid_faults_fire_before_the_cassette_and_keep_the_session_replaying():
    server = RunningEmulator(emulator_config(mode=Mode.HYBRID, cassettes=(COUNTER_FLOW,)))
    await server.start()
    try:
        sid = (await server.create({"maxTtlSeconds": 300}))["id"]
        await add_fault(server, {"action": "goto", "times": 1, "status": 504})
        # Unrecorded: without the fault the session would diverge and go live here.
        await server.act(sid, "goto", {"url": "http://127.0.0.1:9/elsewhere"}, expect=504)
        await server.act(sid, "goto", {"url": COUNTER})
        assert server.last_headers["X-Capture-Replay"] == "hit"
        status, unmatched = await server.call("GET", "/__admin/unmatched", token=None)
        assert (unmatched["count"], unmatched["diverged"]) == (0, [])
    finally:
        await server.stop()


def test_the_readme_rule_file_loads(tmp_path):
    from mock_server.fault_rules import load_rules_file

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Fault injection", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    path = tmp_path / "faults.yaml"
    path.write_text(block.group(1))
    rules = load_rules_file(path)
    assert [r.get("status", r.get("end_session")) for r in rules] == [504, 403, "expire"]
