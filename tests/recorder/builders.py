"""Builders of recorded exchanges for the recorder tests (cassettes written without a proxy)."""

from __future__ import annotations

from recorder.records import Interaction, RecordedRequest, RecordedResponse

T0 = 1_767_225_600.0
AUTH = (
    ("Authorization", "Bearer <redacted user=user_123>"),
    ("Content-Type", "application/json"),
)


def exchange(
    seq,
    at,
    method,
    path,
    req=b"",
    status=200,
    resp=b'{"success":true}',
    *,
    sid=None,
    action=None,
    duration=0.1,
    ctype="application/json",
    query="",
    headers=AUTH,
    error=None,
):
    return Interaction(
        seq=seq,
        start=T0 + at,
        duration=duration,
        session_id=sid,
        action_type=action,
        user="user_123",
        request=RecordedRequest(method, path, query, headers, req),
        response=RecordedResponse(status, (("Content-Type", ctype),), resp, "OK"),
        error=error,
    )
