"""The pytest plugin, driven through pytester in a subprocess: record once against the live
emulator, then replay with the network gone; markers; new episodes appended."""

from __future__ import annotations

import asyncio

from recorder.cassette import open_cassette

# The inner tests' one HTTP helper (a format string: braces doubled), shared by the plugin's
# pytester tests.
CALL = """
def call(mock, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {{**mock.headers(), "Content-Type": "application/json"}}
    req = urllib.request.Request(mock.url + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
"""

INNER = (
    """
import json, urllib.error, urllib.request

import pytest

PAGE = "{page}"


"""
    + CALL
    + """

def flow(mock, ttl):
    status, created = call(mock, "POST", "/v1/sessions", {{"maxTtlSeconds": ttl}})
    assert status == 201, created
    sid = created["session"]["id"]
    status, goto = call(mock, "POST", f"/v1/sessions/{{sid}}/actions",
                        {{"type": "goto", "payload": {{"url": PAGE}}}})
    assert goto["url"] == PAGE
    status, title = call(mock, "POST", f"/v1/sessions/{{sid}}/actions", {{"type": "title"}})
    assert title["title"] == "Counter"
    if not mock.recording:
        mock.advance(ttl)
        status, late = call(mock, "POST", f"/v1/sessions/{{sid}}/actions", {{"type": "title"}})
        assert status == 409 and late["session"]["status"] == "expired"
    status, closed = call(mock, "DELETE", f"/v1/sessions/{{sid}}")
    assert status == 200


def test_flow(capture_mock):
    flow(capture_mock, 120)


@pytest.mark.capture(cassette="shared/named.msgpack")
def test_named(capture_mock):
    assert capture_mock.cassette.name == "named.msgpack"
    flow(capture_mock, 120)
"""
)

NEW_EPISODE = """
from test_flows import flow


def test_flow(capture_mock):
    flow(capture_mock, 120)
    flow(capture_mock, 60)
"""


async def run(pytester, *args: str):
    return await asyncio.to_thread(pytester.runpytest_subprocess, "-p", "no:cacheprovider", *args)


async def test_record_once_then_replay_offline(pytester, emulator, pages):
    pytester.makepyfile(test_flows=INNER.format(page=pages.url("/counter")))
    missing = await run(pytester)
    missing.assert_outcomes(errors=2)
    missing.stdout.fnmatch_lines(["*no cassette at*test_flow.msgpack*--capture-record-mode=once*"])

    recorded = await run(
        pytester, "--capture-record-mode=once", f"--capture-upstream={emulator.url}"
    )
    recorded.assert_outcomes(passed=2)
    cassette = pytester.path / "cassettes" / "test_flows" / "test_flow.msgpack"
    with open_cassette(cassette) as c:
        assert [e.action_type for e in c.entries] == [None, "goto", "title", None]
    assert (pytester.path / "cassettes" / "shared" / "named.msgpack").exists()

    # Default mode none: replay only; the upstream is a dead port and is never asked.
    replayed = await run(pytester, "--capture-upstream=http://127.0.0.1:9")
    replayed.assert_outcomes(passed=2)


async def test_new_episodes_appends_only_what_was_not_recorded(pytester, emulator, pages):
    pytester.makepyfile(test_flows=INNER.format(page=pages.url("/counter")))
    first = await run(
        pytester,
        "--capture-record-mode=once",
        f"--capture-upstream={emulator.url}",
        "test_flows.py::test_flow",
    )
    first.assert_outcomes(passed=1)
    pytester.makepyfile(test_more=NEW_EPISODE)
    cassette = pytester.path / "cassettes" / "test_more" / "test_flow.msgpack"
    cassette.parent.mkdir(parents=True)
    (pytester.path / "cassettes" / "test_flows" / "test_flow.msgpack").rename(cassette)

    more = await run(
        pytester,
        "--capture-record-mode=new_episodes",
        f"--capture-upstream={emulator.url}",
        "test_more.py",
    )
    more.assert_outcomes(passed=1)
    with open_cassette(cassette) as c:
        # The ttl-120 session replayed from the cassette; only the ttl-60 one was appended.
        assert len(c.entries) == 8
        assert [e.seq for e in c.entries] == list(range(1, 9))
    replayed = await run(pytester, "test_more.py", "--capture-upstream=http://127.0.0.1:9")
    replayed.assert_outcomes(passed=1)


async def test_an_unknown_record_mode_is_a_usage_error(pytester):
    pytester.makepyfile(test_x="def test_x(capture_mock):\n    pass\n")
    result = await run(pytester, "--capture-record-mode=sometimes")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*invalid choice*sometimes*"])
