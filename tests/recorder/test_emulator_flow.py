"""A realistic flow recorded through the proxy in front of the emulator (real Chromium)."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from recorder.audit import audit_cassettes
from recorder.cassette import open_cassette
from recorder.proxy import ProxyConfig
from tests.emulator import TOKEN
from tests.recorder.conftest import running_proxy

pytestmark = pytest.mark.browser


async def test_record_a_session_flow_in_front_of_the_emulator(emulator, pages, cassette_path):
    config = ProxyConfig(cassette=cassette_path, upstream=emulator.url)
    answers: list[tuple[int, bytes]] = []
    async with running_proxy(config) as url:
        async with aiohttp.ClientSession(
            headers={"Authorization": TOKEN}, timeout=aiohttp.ClientTimeout(total=60)
        ) as client:

            async def call(method: str, path: str, body: object = None) -> dict:
                data = None if body is None else json.dumps(body).encode()
                headers = {"Content-Type": "application/json"} if data else {}
                async with client.request(
                    method, URL(url + path, encoded=True), data=data, headers=headers
                ) as resp:
                    raw = await resp.read()
                    answers.append((resp.status, raw))
                    return json.loads(raw) if resp.content_type == "application/json" else {}

            sid = (await call("POST", "/v1/sessions", {"maxTtlSeconds": 300}))["session"]["id"]
            actions = f"/v1/sessions/{sid}/actions"
            await call("POST", actions, {"type": "goto", "payload": {"url": pages.url("/counter")}})
            await call("POST", actions, {"type": "click", "payload": {"selector": "#inc"}})
            content = await call(
                "POST", actions, {"type": "content", "payload": {"format": "text"}}
            )
            assert "Count: 1" in content["content"]
            await call(
                "POST",
                actions,
                {"type": "query", "payload": {"selector": "button", "fields": ["text"]}},
            )
            shot = await call("POST", actions, {"type": "screenshot", "payload": {}})
            assert base64.b64decode(shot["bodyBase64"])[:4] == b"\x89PNG"
            bad = await call("POST", actions, {"type": "no_such_action", "payload": {}})
            assert bad["success"] is False
            await call("GET", f"/v1/sessions/{sid}")
            missing = await call("GET", "/v1/sessions/sess_does_not_exist")
            assert missing["success"] is False
            closed = await call("DELETE", f"/v1/sessions/{sid}")
            assert closed["session"]["status"] == "closed"
            query = "url=" + quote(pages.url("/"), safe="")
            digest = hashlib.md5(("secret" + query).encode()).hexdigest()
            await call("GET", f"/user_123/{digest}/image?{query}")

    statuses = [status for status, _ in answers]
    assert statuses[:6] == [201, 200, 200, 200, 200, 200]
    assert statuses[6] == 400 and statuses[8] == 404 and statuses[9] == 200
    assert statuses[10] == 200 and answers[10][1][:4] == b"\x89PNG"  # the emulator's one-shot
    with open_cassette(cassette_path) as cassette:
        entries = cassette.entries
        assert [e.seq for e in entries] == list(range(1, 12))
        assert [e.action_type for e in entries[1:7]] == [
            "goto",
            "click",
            "content",
            "query",
            "screenshot",
            "no_such_action",
        ]
        assert {e.session_id for e in entries[:8]} | {entries[9].session_id} == {sid}
        assert entries[8].session_id == "sess_does_not_exist"
        assert {e.user for e in entries} == {"user_123"}
        assert entries[10].path == "/user_123/<redacted>/image"
        for entry, (status, raw) in zip(entries, answers, strict=True):
            item = cassette.load(entry)
            assert item.response.status == status and item.response.body == raw
        report = audit_cassettes([cassette])
    (session,) = [s for s in report.sessions if s.session_id == sid]
    assert (
        session.credits == closed["session"]["billedCredits"] and session.credits_source == "billed"
    )
    assert report.findings == ()
    assert b"secret" not in cassette_path.read_bytes().replace(b"<redacted", b"")
