"""Redaction: nothing secret reaches the cassette, checked on the raw bytes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from urllib.parse import quote, quote_plus

import aiohttp
import brotli
import psutil
import pytest
from backports import zstd
from yarl import URL

from recorder.audit import audit_cassettes
from recorder.cassette import CassetteWriter, WriteMode, open_cassette
from recorder.errors import RedactionRuleError
from recorder.proxy import ProxyConfig
from recorder.records import Interaction, RecordedRequest, RecordedResponse
from recorder.redaction import (
    WITHHELD_HEADER,
    RedactionRules,
    Redactor,
    redact_authorization,
)
from tests.recorder.conftest import running_proxy

USER = "user_123"
SECRET = "s3cr3t/v@lue+1="
TOKEN = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
PASSWORD = "hunter2-Passw0rd!"
LITERAL = "literal-Secret/42"
API_KEY = "k-9f8e7d6c5b4a"


def _forms(value: str) -> list[bytes]:
    raw = value.encode()
    return [
        raw,
        quote(value, safe="").encode(),
        quote_plus(value).encode(),
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw),
    ]


def test_authorization_keeps_scheme_and_user_only():
    stored, user, secrets = redact_authorization(f"Bearer {TOKEN}")
    assert (stored, user) == ("Bearer <redacted user=user_123>", USER)
    assert set(secrets) == {TOKEN, f"{USER}:{SECRET}", SECRET}
    assert redact_authorization("Bearer not-base64!")[0] == "Bearer <redacted>"
    assert redact_authorization("Token abc")[0] == "Token <redacted>"


def _action(body: dict, headers: tuple = ()) -> Interaction:
    return Interaction(
        seq=1,
        start=0.0,
        duration=0.0,
        session_id="s",
        action_type=body.get("type"),
        user=None,
        request=RecordedRequest(
            "POST", "/v1/sessions/s/actions", "", headers, json.dumps(body).encode()
        ),
        response=RecordedResponse(200, (), b'{"success":true}'),
    )


@pytest.mark.parametrize(
    "selector",
    [
        "#password",
        "input[type=password]",
        "#api-key",
        "[name=otp]",
        "#client_secret",
        ".token-field",
    ],
)
def test_password_like_fields_are_redacted_by_default(selector):
    redactor = Redactor()
    body = {"type": "fill", "payload": {"selector": selector, "value": PASSWORD}}
    out = redactor.redact(_action(body))
    assert json.loads(out.request.body)["payload"]["value"] == "<redacted>"


def test_ordinary_fields_and_other_actions_are_kept():
    redactor = Redactor()
    fill = redactor.redact(
        _action({"type": "fill", "payload": {"selector": "#user", "value": "alice"}})
    )
    assert json.loads(fill.request.body)["payload"]["value"] == "alice"
    click = redactor.redact(_action({"type": "click", "payload": {"selector": "#password"}}))
    assert json.loads(click.request.body) == {"type": "click", "payload": {"selector": "#password"}}


def test_batch_nested_password_and_json_paths_are_redacted():
    redactor = Redactor(RedactionRules(json_paths=("payload.value",)))
    body = {
        "type": "batch",
        "payload": {
            "actions": [
                {"type": "type_text", "payload": {"selector": "#pwd", "text": PASSWORD}},
                {"type": "fill", "payload": {"selector": "#user", "value": "bob-the-user"}},
            ]
        },
    }
    out = json.loads(redactor.redact(_action(body)).request.body)
    assert out["payload"]["actions"][0]["payload"]["text"] == "<redacted>"
    assert out["payload"]["actions"][1]["payload"]["value"] == "<redacted>"


def test_a_redacted_password_is_also_scrubbed_from_later_answers():
    redactor = Redactor()
    redactor.redact(
        _action({"type": "fill", "payload": {"selector": "#password", "value": PASSWORD}})
    )
    later = _action({"type": "query", "payload": {"selector": "#password", "fields": ["value"]}})
    later = Interaction(
        **{
            **{f: getattr(later, f) for f in later.__slots__},
            "response": RecordedResponse(200, (), json.dumps({"v": PASSWORD}).encode()),
        }
    )
    assert PASSWORD.encode() not in redactor.redact(later).response.body


ENCODERS = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
    "deflate": zlib.compress,
    "gzip, br": lambda data: brotli.compress(gzip.compress(data)),
}


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_encoded_answer_holding_the_token_is_stored_decoded_and_scrubbed(coding):
    redactor = Redactor()
    item = _action({"type": "title", "payload": {}}, (("Authorization", f"Bearer {TOKEN}"),))
    body = ENCODERS[coding](json.dumps({"echo": TOKEN}).encode())
    item = Interaction(
        **{
            **{f: getattr(item, f) for f in item.__slots__},
            "response": RecordedResponse(200, (("Content-Encoding", coding),), body),
        }
    )
    out = redactor.redact(item)
    assert TOKEN.encode() not in out.response.body and b"<redacted>" in out.response.body
    assert out.response.header("content-encoding") is None
    assert redactor.stats.leaks_caught == 1


def test_invalid_json_path_is_refused():
    with pytest.raises(RedactionRuleError):
        RedactionRules(json_paths=("payload..value",))


async def test_recorded_cassette_bytes_hold_no_secret_in_any_encoding(upstream, cassette_path):
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY}
    query = "url=https%3A%2F%2Fexample.com%2F&full=true"
    one_shot_hash = hashlib.md5((SECRET + query).encode()).hexdigest()
    rules = RedactionRules(
        headers=frozenset({"x-api-key"}), json_paths=("payload.note",), secrets=(LITERAL,)
    )
    config = ProxyConfig(cassette=cassette_path, upstream=upstream.url, redaction=rules)
    async with running_proxy(config) as url:
        async with aiohttp.ClientSession() as client:

            async def call(method: str, path: str, **kw: object) -> bytes:
                target = URL(url + path, encoded=True)  # keep the raw query a signed URL hashes
                async with client.request(method, target, headers=auth, **kw) as resp:
                    return await resp.read()

            created = json.loads(await call("POST", "/v1/sessions", json={}))
            sid = created["session"]["id"]
            await call(
                "POST",
                f"/v1/sessions/{sid}/actions",
                json={"type": "fill", "payload": {"selector": "#password", "value": PASSWORD}},
            )
            await call(
                "POST",
                f"/v1/sessions/{sid}/actions",
                json={
                    "type": "click",
                    "payload": {"selector": "#submit", "note": "private-note-77"},
                },
            )
            await call(
                "GET",
                f"/v1/sessions/{sid}?debug={quote(SECRET, safe='')}&lit={quote_plus(LITERAL)}",
            )
            echoed = await call("POST", "/upload", data=f"say {LITERAL} and {PASSWORD}".encode())
            assert LITERAL.encode() in echoed  # the client still gets the real answer
            leaked = json.loads(await call("GET", "/echo-secret"))
            assert leaked["token"] == TOKEN
            await call("GET", f"/{USER}/{one_shot_hash}/image?{query}")
            async with client.get(f"{url}/__admin/health") as resp:
                health = await resp.json()
    assert health["redaction"]["leaksCaught"] >= 2
    data = cassette_path.read_bytes()
    forbidden = [
        *_forms(SECRET),
        *_forms(f"{USER}:{SECRET}"),
        *_forms(PASSWORD),
        *_forms(LITERAL),
        TOKEN.encode(),
        quote(TOKEN, safe="").encode(),
        f"Bearer {TOKEN}".encode(),
        one_shot_hash.encode(),
        API_KEY.encode(),
        b"private-note-77",
    ]
    for needle in forbidden:
        assert needle not in data, needle
    assert b"Bearer <redacted user=user_123>" in data
    with open_cassette(cassette_path) as cassette:
        entries = cassette.entries
        assert {e.user for e in entries if e.path != "/upload"} == {USER}
        assert entries[-1].path == f"/{USER}/<redacted>/image"
        assert entries[-1].query == query
    assert upstream.received[-1].target == f"/{USER}/{one_shot_hash}/image?{query}"


def test_connect_url_token_is_redacted_here_and_in_later_answers():
    redactor = Redactor()
    token = "cdpTok_9f8e7d6c5b4a3210"
    created = json.dumps(
        {
            "success": True,
            "session": {
                "id": "sess_c",
                "connectUrl": f"wss://connect.capture.page/cdp?token={token}",
            },
        }
    ).encode()
    first = Interaction(
        seq=1,
        start=0.0,
        duration=0.0,
        session_id="sess_c",
        action_type=None,
        user=None,
        request=RecordedRequest("POST", "/v1/sessions", "", (), b'{"cdp":true}'),
        response=RecordedResponse(201, (("Content-Type", "application/json"),), created),
    )
    later = Interaction(
        **{
            **{f: getattr(first, f) for f in first.__slots__},
            "seq": 2,
            "response": RecordedResponse(200, (), json.dumps({"echo": token}).encode()),
        }
    )
    out = [redactor.redact(first), redactor.redact(later)]
    assert all(token.encode() not in item.response.body for item in out)
    assert b"cdp?token=<redacted>" in out[0].response.body


def _answer_with(body: bytes, headers: tuple = (("Content-Type", "application/json"),)):
    item = _action({"type": "title", "payload": {}}, (("Authorization", f"Bearer {TOKEN}"),))
    return Interaction(
        **{
            **{f: getattr(item, f) for f in item.__slots__},
            "response": RecordedResponse(200, headers, body),
        }
    )


def _escaped_forms(value: str) -> dict[str, bytes]:
    raw = value.encode()
    noise = bytes(range(7, 200))
    forms = {
        "json \\u": "".join(f"\\u{ord(c):04x}" for c in value).encode(),
        "json \\/": value.replace("/", "\\/").encode(),
        "percent lower": quote(value, safe="").lower().encode(),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
    }
    for skip in range(3):
        blob = noise[:skip] + raw + noise
        forms[f"base64 at {skip}"] = base64.b64encode(blob)
        forms[f"base64url at {skip}"] = base64.urlsafe_b64encode(noise[:30] + blob)
    return forms


@pytest.mark.parametrize("form", sorted(_escaped_forms(SECRET)))
def test_the_request_secret_is_scrubbed_and_audited_in_every_encoding(tmp_path, form):
    encoded = _escaped_forms(SECRET)[form]
    body = b'{"shot":{"bodyBase64":"' + encoded + b'"}}'
    path = tmp_path / "leak.msgpack"
    with CassetteWriter(path, upstream="http://upstream", mode=WriteMode.NEW) as writer:
        writer.append(Redactor().redact(_answer_with(body)))
    assert encoded not in path.read_bytes()
    # the same bytes stored without redaction are found by audit's scan of the request's secret
    raw_path = tmp_path / "raw.msgpack"
    with CassetteWriter(raw_path, upstream="http://upstream", mode=WriteMode.NEW) as writer:
        writer.append(_answer_with(body))
    with open_cassette(raw_path) as cassette:
        findings = audit_cassettes([cassette], secrets=[SECRET]).findings
    assert any(f.where == "response body" for f in findings), form


def test_an_answer_in_an_unknown_content_coding_is_withheld_not_stored():
    item = _answer_with(b"opaque " + TOKEN.encode(), (("Content-Encoding", "x-custom"),))
    out = Redactor().redact(item)
    assert out.response.body == b""
    assert "x-custom" in out.response.header(WITHHELD_HEADER)
    assert out.response.header("content-encoding") is None


def test_a_gzip_bomb_is_withheld_without_inflating_it():
    bomb = gzip.compress(b"\0" * (512 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024
    process = psutil.Process()
    before = process.memory_info().rss
    out = Redactor().redact(_answer_with(bomb, (("Content-Encoding", "gzip"),)))
    assert out.response.body == b"" and "more than" in out.response.header(WITHHELD_HEADER)
    assert process.memory_info().rss - before < 256 * 1024 * 1024
