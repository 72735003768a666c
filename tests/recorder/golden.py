"""Writes the golden cassettes of `tests/fixtures/`, one per format version (committed binaries).

Run `python -m tests.recorder.golden` only when adding a format version: old goldens must never
change, since they prove that files written by old releases still load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgpack

from recorder.codec import FORMAT_NAME, encode_interaction, encode_record
from recorder.records import Interaction, RecordedRequest, RecordedResponse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CREATED_AT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
AUTH = "Bearer <redacted user=user_123>"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(16))

# (seq, start, method, path, query, request body, status, response body, content type)
EXCHANGES = [
    (
        1,
        CREATED_AT + 1,
        "POST",
        "/v1/sessions",
        "",
        b'{"maxTtlSeconds":300}',
        201,
        b'{"success":true,"session":{"id":"sess_golden","status":"active","maxTtlSeconds":300}}',
        "application/json",
    ),
    (
        2,
        CREATED_AT + 2,
        "POST",
        "/v1/sessions/sess_golden/actions",
        "",
        b'{"type":"goto","payload":{"url":"https://example.com/"}}',
        200,
        b'{"success":true,"expiresInSeconds":298,"url":"https://example.com/"}',
        "application/json",
    ),
    (
        3,
        CREATED_AT + 3,
        "GET",
        "/user_123/<redacted>/image",
        "url=https%3A%2F%2Fexample.com%2F",
        b"",
        200,
        PNG,
        "image/png",
    ),
]


def v1_bytes() -> bytes:
    """Format 1: nested maps, headers as dicts, no duration / action type / user."""
    out = [
        msgpack.packb(
            {
                "format": FORMAT_NAME,
                "version": 1,
                "created_at": CREATED_AT,
                "tool_version": "0.0.1",
                "upstream": "https://api.capture.page",
            }
        )
    ]
    for seq, start, method, path, query, req_body, status, resp_body, ctype in EXCHANGES:
        out.append(
            msgpack.packb(
                {
                    "seq": seq,
                    "start": start,
                    "session_id": "sess_golden" if "sessions" in path else None,
                    "request": {
                        "method": method,
                        "path": path,
                        "query": query,
                        "headers": {"Authorization": AUTH},
                        "body": req_body,
                    },
                    "response": {
                        "status": status,
                        "headers": {"Content-Type": ctype},
                        "body": resp_body,
                    },
                },
                use_bin_type=True,
            )
        )
    return b"".join(out)


def v2_bytes() -> bytes:
    """Format 2: `[index, meta, request body, response body]` records, one after the other."""
    return _records_bytes(2, encode_record)


def v3_bytes() -> bytes:
    """Format 3: format 2's records, each in a frame (sync marker, length, CRC32)."""
    return _records_bytes(3, encode_interaction)


def _records_bytes(version: int, encode: Callable[[Interaction], bytes]) -> bytes:
    out = [
        msgpack.packb(
            {
                "format": FORMAT_NAME,
                "version": version,
                "created_at": CREATED_AT,
                "tool_version": "0.1.0",
                "upstream": "https://api.capture.page",
            }
        )
    ]
    for seq, start, method, path, query, req_body, status, resp_body, ctype in EXCHANGES:
        action = "goto" if path.endswith("/actions") else None
        item = Interaction(
            seq=seq,
            start=start,
            duration=0.25,
            session_id="sess_golden" if "sessions" in path else None,
            action_type=action,
            user="user_123",
            request=RecordedRequest(method, path, query, (("Authorization", AUTH),), req_body),
            response=RecordedResponse(status, (("Content-Type", ctype),), resp_body, "OK"),
        )
        out.append(encode(item))
    return b"".join(out)


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    (FIXTURES / "golden-v1.cassette").write_bytes(v1_bytes())
    (FIXTURES / "golden-v2.cassette").write_bytes(v2_bytes())
    (FIXTURES / "golden-v3.cassette").write_bytes(v3_bytes())


if __name__ == "__main__":
    main()
