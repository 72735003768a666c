"""`capture_mock.warnings()` and `--capture-strict[=documented]`, through pytester in a
subprocess: recorded against the live emulator (real Chromium), then replayed offline."""

from __future__ import annotations

from tests.mock_server.test_pytest_plugin import CALL, run

INNER = (
    """
import json, urllib.error, urllib.request

PAGE = "{page}"
UNKNOWN = "fill payload.bogus is unknown: neither Capture's docs nor capture-replay name it"


"""
    + CALL
    + """

def fill(mock, payload):
    status, created = call(mock, "POST", "/v1/sessions", {{"maxTtlSeconds": 60}})
    sid = created["session"]["id"]
    actions = f"/v1/sessions/{{sid}}/actions"
    assert call(mock, "POST", actions, {{"type": "goto", "payload": {{"url": PAGE}}}})[0] == 200
    assert call(mock, "POST", actions, {{"type": "fill", "payload": payload}})[0] == 200
    call(mock, "DELETE", f"/v1/sessions/{{sid}}")
    return {{w["warning"]: w for w in mock.warnings()}}


def test_unknown_field(capture_mock):
    found = fill(capture_mock, {{"selector": "#user", "value": "a", "bogus": 1}})
    assert found[UNKNOWN]["count"] == 1 and found[UNKNOWN]["level"] == "unknown"
    assert found[UNKNOWN]["first"]["method"] == "POST"


def test_chosen_names_only(capture_mock):
    found = fill(capture_mock, {{"selector": "#user", "value": "a"}})
    assert found and {{w["level"] for w in found.values()}} == {{"chosen"}}
"""
)


async def test_warnings_and_capture_strict_recording_then_replaying(pytester, emulator, pages):
    pytester.makepyfile(test_fields=INNER.format(page=pages.url("/form")))
    recorded = await run(
        pytester,
        "--capture-record-mode=once",
        f"--capture-upstream={emulator.url}",
        "--capture-strict",
    )
    # Both tests' own assertions pass (warnings() while recording); strict fails the unknown one.
    recorded.assert_outcomes(passed=2, errors=1)
    recorded.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unknown_field*",
            "*--capture-strict=unknown*",
            "*1 × fill payload.bogus is unknown*",
        ]
    )
    offline = "--capture-upstream=http://127.0.0.1:9"
    (await run(pytester, offline)).assert_outcomes(passed=2)
    strict = await run(pytester, offline, "--capture-strict")
    strict.assert_outcomes(passed=2, errors=1)
    documented = await run(pytester, offline, "--capture-strict=documented")
    documented.assert_outcomes(passed=2, errors=2)
    documented.stdout.fnmatch_lines(["*fill payload.value is not named by Capture's docs*"])
