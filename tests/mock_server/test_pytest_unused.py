"""The pytest plugin's `--capture-report-unused` and `--capture-prune`, through pytester in a
subprocess: two tests share a cassette, one stops using an exchange; the report names it, the
prune removes it only after a whole run in which every test using the cassette passed, and the
pruned cassette still replays."""

from __future__ import annotations

import asyncio
import json

from recorder.cassette import open_cassette
from recorder.importing import import_cassette

SID = "sess_shared"
SESSION = {
    "id": SID,
    "status": "active",
    "expiresAt": "2026-01-01T00:05:00.000Z",
    "maxTtlSeconds": 300,
    "proxy": False,
    "bypassBotDetection": False,
    "cdp": False,
}
CLOSED = {
    "id": SID,
    "status": "closed",
    "startedAt": "2026-01-01T00:00:00.000Z",
    "expiresAt": "2026-01-01T00:05:00.000Z",
    "billedCredits": 1,
    "actionCount": 3,
    "actionSuccessCount": 3,
    "actionErrorCount": 0,
    "actionBreakdown": {},
    "options": {"maxTtlSeconds": 300},
}
QUERY = {
    "success": True,
    "selector": "#count",
    "fields": ["text"],
    "attributes": [],
    "limit": 100,
    "count": 1,
    "elements": [{"text": "0"}],
}


def action(kind: str, payload: dict, answer: dict) -> dict:
    return {
        "request": {
            "method": "POST",
            "path": f"/v1/sessions/{SID}/actions",
            "body": {"json": {"type": kind, "payload": payload}},
        },
        "response": {"status": 200, "body": {"json": {"expiresInSeconds": 300, **answer}}},
    }


CASSETTE = {
    "interactions": [
        {
            "request": {"method": "POST", "path": "/v1/sessions", "body": {"json": {}}},
            "response": {"status": 201, "body": {"json": {"success": True, "session": SESSION}}},
        },
        action("goto", {"url": "http://page.test/"}, {"success": True, "url": "http://page.test/"}),
        action("title", {}, {"success": True, "title": "Counter"}),
        action("query", {"selector": "#count"}, QUERY),
        {
            "request": {"method": "DELETE", "path": f"/v1/sessions/{SID}"},
            "response": {"status": 200, "body": {"json": {"success": True, "session": CLOSED}}},
        },
    ]
}

TESTS = """
import json, urllib.request

import pytest


def call(mock, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {{**mock.headers(), "Content-Type": "application/json"}}
    req = urllib.request.Request(mock.url + path, method=method, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def act(mock, sid, kind, payload):
    return call(mock, "POST", f"/v1/sessions/{{sid}}/actions", {{"type": kind, "payload": payload}})


def opened(mock):
    sid = call(mock, "POST", "/v1/sessions", {{}})["session"]["id"]
    assert act(mock, sid, "goto", {{"url": "http://page.test/"}})["url"] == "http://page.test/"
    return sid


@pytest.mark.capture(cassette="shared.msgpack")
def test_counts(capture_mock):
    sid = opened(capture_mock)
    assert act(capture_mock, sid, "query", {{"selector": "#count"}})["count"] == {count}
    call(capture_mock, "DELETE", f"/v1/sessions/{{sid}}")


@pytest.mark.capture(cassette="shared.msgpack")
def test_title(capture_mock):
    sid = opened(capture_mock)
    {title}
    call(capture_mock, "DELETE", f"/v1/sessions/{{sid}}")
"""
IDLE = """
import pytest


@pytest.mark.capture(cassette="idle.msgpack")
def test_idle(capture_mock):
    assert capture_mock.url
"""
USES_TITLE = 'assert act(capture_mock, sid, "title", {})["title"] == "Counter"'
NO_TITLE = "pass"


async def run(pytester, *args: str):
    return await asyncio.to_thread(pytester.runpytest_subprocess, "-p", "no:cacheprovider", *args)


def seqs(path) -> list[int]:
    with open_cassette(path) as cassette:
        return [e.seq for e in cassette.entries]


async def test_unused_report_and_prune_across_two_tests(pytester):
    source = pytester.path / "shared.json"
    source.write_text(json.dumps(CASSETTE))
    cassette = pytester.path / "cassettes" / "shared.msgpack"
    cassette.parent.mkdir()
    import_cassette(source, cassette)
    pytester.makepyfile(test_shared=TESTS.format(count=1, title=USES_TITLE))

    both = await run(pytester, "--capture-report-unused")
    both.assert_outcomes(passed=2)
    both.stdout.fnmatch_lines(
        ["*capture-replay: recorded exchanges no test used*", "cassettes/shared.msgpack: all 5*"]
    )

    pytester.makepyfile(test_shared=TESTS.format(count=1, title=NO_TITLE))
    report = await run(pytester, "--capture-report-unused")
    report.assert_outcomes(passed=2)
    report.stdout.fnmatch_lines(
        [
            "cassettes/shared.msgpack: 1 of 5 exchanges unused",
            f"  #3 POST /v1/sessions/{SID}/actions (title)",
        ]
    )
    assert seqs(cassette) == [1, 2, 3, 4, 5]  # a report changes nothing

    before = cassette.read_bytes()
    pytester.makepyfile(test_shared=TESTS.format(count=2, title=NO_TITLE))
    failed = await run(pytester, "--capture-prune")
    failed.assert_outcomes(passed=1, failed=1)
    failed.stdout.fnmatch_lines(
        ["*not pruned: used by a test that did not pass (test_shared.py::test_counts)"]
    )
    pytester.makepyfile(test_shared=TESTS.format(count=1, title=NO_TITLE))
    partial = await run(pytester, "--capture-prune", "-k", "title")
    partial.assert_outcomes(passed=1)
    partial.stdout.fnmatch_lines(["*not pruned: 1 tests were deselected (prune after a whole run)"])
    assert cassette.read_bytes() == before

    idle = cassette.with_name("idle.msgpack")  # a test that no longer sends anything
    import_cassette(source, idle)
    pytester.makepyfile(test_idle=IDLE)
    pruned = await run(pytester, "--capture-prune")
    pruned.assert_outcomes(passed=3)
    pruned.stdout.fnmatch_lines(
        [
            "cassettes/idle.msgpack: 5 of 5 exchanges unused",
            "*not pruned: no test used any of it (delete it if it is stale)",
            "cassettes/shared.msgpack: 1 of 5 exchanges unused",
            "*#3 POST*(title)",
            "  pruned: dropped #3; 4 exchanges kept",
        ]
    )
    assert seqs(cassette) == [1, 2, 4, 5]  # not renumbered
    assert seqs(idle) == [1, 2, 3, 4, 5]
    (pytester.path / "test_idle.py").unlink()

    again = await run(pytester, "--capture-report-unused")
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["cassettes/shared.msgpack: all 4 exchanges used"])
