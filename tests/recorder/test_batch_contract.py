"""The batch endpoints on the wire (`recorder.contract`): their paths, the body signature in hex
or base64, and that redaction blanks the signature header while keeping the API key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from recorder.contract import (
    batch_parts,
    batch_path,
    body_signature_matches,
    main_argument,
    sign_body,
)
from recorder.records import Interaction, RecordedRequest, RecordedResponse
from recorder.redaction import REDACTED, Redactor

SECRET = "batch-secret"
BODY = json.dumps({"data": [{"url": "https://example.com/", "options": {"full": True}}]}).encode()


def _digest() -> bytes:
    return hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()


def test_batch_paths_name_endpoint_and_key():
    assert batch_parts("/batch-image/key_1") == ("image", "key_1")
    assert batch_parts("/batch-pdf/key%201/") == ("pdf", "key 1")
    assert batch_parts("/batch-animated/key_1") is None
    assert batch_parts("/key/hash/image") is None
    assert batch_path("pdf", "k") == "/batch-pdf/k"
    assert main_argument("/batch-image/k", "", BODY) == "1 items"


@pytest.mark.parametrize(
    "written",
    [
        _digest().hex(),
        _digest().hex().upper(),
        base64.b64encode(_digest()).decode(),
        base64.b64encode(_digest()).decode().rstrip("="),
        base64.urlsafe_b64encode(_digest()).decode(),
    ],
)
def test_body_signature_in_hex_or_base64_matches(written: str):
    assert sign_body(SECRET, BODY) == _digest().hex()
    assert body_signature_matches(SECRET, BODY, written)


@pytest.mark.parametrize(
    "written",
    [
        "",
        "not a signature",
        hmac.new(b"other", BODY, hashlib.sha256).hexdigest(),
        hmac.new(SECRET.encode(), BODY + b" ", hashlib.sha256).hexdigest(),
        base64.b64encode(_digest()[:16]).decode(),
        hashlib.md5(SECRET.encode() + BODY).hexdigest(),
    ],
)
def test_body_signature_wrong_does_not_match(written: str):
    assert not body_signature_matches(SECRET, BODY, written)


def test_redaction_blanks_the_signature_header_everywhere_and_keeps_the_key():
    signature = sign_body(SECRET, BODY)
    item = Interaction(
        seq=1,
        start=0.0,
        duration=0.0,
        session_id=None,
        action_type=None,
        user=None,
        request=RecordedRequest(
            "POST",
            "/batch-image/key_1",
            "",
            (("Content-Type", "application/json"), ("X-Req-Signature", signature)),
            BODY,
        ),
        # An answer that quotes the signature is scrubbed too (fail closed).
        response=RecordedResponse(202, (), json.dumps({"echo": signature}).encode()),
    )
    out = Redactor().redact(item)
    assert dict(out.request.headers)["X-Req-Signature"] == REDACTED
    assert out.request.path == "/batch-image/key_1"
    assert signature not in repr(out)
    assert json.loads(out.response.body)["echo"] == REDACTED
