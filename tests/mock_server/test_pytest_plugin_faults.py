"""The pytest plugin's fault rules, driven through pytester in a subprocess: `capture_mock.fault`
adds a rule to the replaying server and its handle removes it; `capture_mock.faults()` lists."""

from __future__ import annotations

import asyncio
from pathlib import Path

COUNTER_FLOW = (
    Path(__file__).resolve().parents[2] / "cassettes" / "examples" / "counter-flow.msgpack"
)

INNER = """
import json, urllib.error, urllib.request

import pytest


def call(mock, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {{**mock.headers(), "Content-Type": "application/json"}}
    req = urllib.request.Request(mock.url + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.capture(cassette="{cassette}")
def test_a_fault_lives_for_its_with_block(capture_mock):
    with capture_mock.fault(method="POST", path="/v1/sessions", status=403) as rule:
        status, body = call(capture_mock, "POST", "/v1/sessions", {{"maxTtlSeconds": 300}})
        assert (status, body["error"]) == (403, "User is not allowed to create the session")
        assert rule.fired == 1
        assert [(r["id"], r["status"]) for r in capture_mock.faults()] == [(rule.id, 403)]
    assert capture_mock.faults() == []
    status, body = call(capture_mock, "POST", "/v1/sessions", {{"maxTtlSeconds": 300}})
    assert status == 201
    sid = body["session"]["id"]

    expiring = capture_mock.fault(session=sid, action="click", end_session="expire")
    status, body = call(capture_mock, "POST", f"/v1/sessions/{{sid}}/actions",
                        {{"type": "click", "payload": {{"selector": "#inc"}}}})
    assert status == 409 and body["session"]["status"] == "expired"
    expiring.remove()
    assert capture_mock.faults() == []


@pytest.mark.capture(cassette="{cassette}")
def test_a_malformed_rule_names_its_field(capture_mock):
    with pytest.raises(ValueError, match="times: must not be negative"):
        capture_mock.fault(status=500, times=-1)
    with pytest.raises(ValueError, match="status: 504 is not documented for create"):
        capture_mock.fault(status=504)
    assert capture_mock.faults() == []
"""


async def test_capture_mock_adds_lists_and_removes_faults(pytester):
    pytester.makepyfile(test_faulty=INNER.format(cassette=COUNTER_FLOW))
    result = await asyncio.to_thread(
        pytester.runpytest_subprocess,
        "-p",
        "no:cacheprovider",
        "--capture-upstream=http://127.0.0.1:9",
    )
    result.assert_outcomes(passed=2)
