"""Recording against an upstream that sends no `X-Capture-Replay-Warning` (the real Capture API;
here a plain aiohttp app stands in for it): the recorder computes each request's findings itself
and keeps them in the stored answer, so `audit` lists per session what the real API may not know.
The client's answer stays as the upstream sent it, and an upstream's own header (the emulator's)
is kept as it came, never doubled."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from click.testing import CliRunner

from recorder.audit import audit_cassettes
from recorder.cassette import open_cassette
from recorder.cli import commands
from recorder.findings import MAX_HEADERS, request_findings
from recorder.proxy import ProxyConfig
from recorder.records import WARNING_HEADER
from recorder.report import render_report
from tests.recorder.conftest import AUTH, FakeUpstream, listen_on_loopback, running_proxy
from tests.recorder.test_recorded_warnings import TEXT_SELECTOR, UNKNOWN_FILL, flow

UNKNOWN_OPTION = (
    "image option bogusOpt is unknown: neither Capture's docs nor capture-replay name it"
)
UNKNOWN_FIELD = {"type": "fill", "payload": {"selector": "#user", "value": "a", "bogus": 1}}
ONESHOT = "/key/0123abcd/image?url=https%3A%2F%2Fexample.com%2F&bogusOpt=1"


async def _flow(url: str) -> list[tuple[int, list[str]]]:
    """The emulator test's session flow (a fill with an unknown field twice, a text= click), then
    a one-shot with an unknown option: each answer's status and warning headers."""
    seen = await flow(url, "https://example.com/")
    async with aiohttp.ClientSession() as http:
        async with http.get(url + ONESHOT) as resp:
            seen.append((resp.status, resp.headers.getall(WARNING_HEADER, [])))
    return seen


async def test_recording_the_real_api_keeps_the_findings_for_audit_and_report(tmp_path: Path):
    cassette = tmp_path / "cloud.msgpack"
    upstream = FakeUpstream()
    await upstream.start()
    try:
        async with running_proxy(ProxyConfig(cassette=cassette, upstream=upstream.url)) as url:
            answers = await _flow(url)
    finally:
        await upstream.stop()
    # The client sees the upstream's answers unchanged: the real API sends no warning.
    assert answers == [(201, [])] + [(200, [])] * 6

    with open_cassette(cassette) as opened:
        items = list(opened.interactions())
        kept = [list(i.response.warnings) for i in items]
        expected = [
            [
                f.message
                for f in request_findings(
                    i.request.method, i.request.path, i.request.query, i.request.body
                )
            ]
            for i in items
        ]
        report = audit_cassettes([opened])
        page = render_report([opened])
    assert kept == expected
    assert kept[0] == kept[1] == kept[5] == [] and UNKNOWN_FILL in kept[2]
    assert kept[4] == [TEXT_SELECTOR] and kept[6] == [UNKNOWN_OPTION]
    (session,) = report.sessions
    counts = {w.warning: w.count for w in session.warnings}
    assert counts[UNKNOWN_FILL] == 2 and counts[TEXT_SELECTOR] == 1
    assert UNKNOWN_OPTION not in counts  # a one-shot belongs to no session

    text = CliRunner().invoke(commands, ["audit", str(cassette)])
    assert text.exit_code == 0, text.output
    assert "    fields the real API may not know:" in text.output
    assert f"         2 × {UNKNOWN_FILL}" in text.output
    # The HTML report shows each exchange's warnings beside it.
    assert page.count('class="warnings"') == 3 + 1  # the two fills, the click, the one-shot
    assert "fill payload.bogus is unknown" in page and "uses text=:" in page


@asynccontextmanager
async def _emulator_like() -> AsyncIterator[str]:
    """An upstream that answers every request with a warning header of its own, as the
    emulator does (the wording is its own: the recorder must keep it, not add its own)."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if request.method == "POST" and request.path == "/v1/sessions":
            body = {"success": True, "session": {"id": "sess_1", "status": "active"}}
            return web.json_response(body, status=201)
        resp = web.json_response({"success": True, "expiresInSeconds": 290})
        resp.headers.add(WARNING_HEADER, "said by the upstream")
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    url = await listen_on_loopback(runner)
    try:
        yield url
    finally:
        await runner.cleanup()


async def test_an_upstreams_own_warnings_are_kept_not_doubled(tmp_path: Path):
    cassette = tmp_path / "emulated.msgpack"
    async with _emulator_like() as upstream:
        async with running_proxy(ProxyConfig(cassette=cassette, upstream=upstream)) as url:
            async with aiohttp.ClientSession(headers=AUTH) as http:
                await (await http.post(url + "/v1/sessions", data=b"{}")).read()
                async with http.post(
                    url + "/v1/sessions/sess_1/actions",
                    data=json.dumps(
                        {"type": "fill", "payload": {"selector": "#user", "value": "a", "bogus": 1}}
                    ).encode(),
                ) as resp:
                    assert resp.headers.getall(WARNING_HEADER) == ["said by the upstream"]
    with open_cassette(cassette) as opened:
        items = list(opened.interactions())
        report = audit_cassettes([opened])
    assert [list(i.response.warnings) for i in items] == [[], ["said by the upstream"]]
    (session,) = report.sessions
    assert [(w.warning, w.count) for w in session.warnings] == [("said by the upstream", 1)]


async def test_a_payload_of_many_unknown_fields_keeps_at_most_the_cap(tmp_path: Path):
    cassette = tmp_path / "many.msgpack"
    upstream = FakeUpstream()
    await upstream.start()
    many = {"type": "goto", "payload": {f"field{i}": i for i in range(MAX_HEADERS + 5)}}
    try:
        async with running_proxy(ProxyConfig(cassette=cassette, upstream=upstream.url)) as url:
            async with aiohttp.ClientSession(headers=AUTH) as http:
                target = url + "/v1/sessions/sess_0001/actions"
                await (await http.post(target, data=json.dumps(many).encode())).read()
    finally:
        await upstream.stop()
    with open_cassette(cassette) as opened:
        (item,) = list(opened.interactions())
    kept = item.response.warnings
    assert len(kept) == MAX_HEADERS + 1 and kept[-1] == "... and 5 more"
