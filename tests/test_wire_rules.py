"""One owner for Capture's wire rules: every module that needs a rule agrees with the contract.

Each one-shot endpoint's hash is blanked by redaction and matched by replay; the billing rule of
the emulator and of `audit` is the same function, so they agree at the minute's edge.
"""

from __future__ import annotations

import pytest

from mock_server.replay.player import Player
from recorder.audit import audit_cassettes
from recorder.cassette import CassetteWriter, WriteMode, open_cassette
from recorder.contract import ONESHOT_ENDPOINTS, credits_between, sign
from recorder.records import Interaction, RecordedRequest, RecordedResponse
from recorder.redaction import Redactor
from tests.recorder.builders import exchange

SECRET = "oneshot-secret"
QUERY = "url=https%3A%2F%2Fexample.com%2F&width=800"


def _oneshot(seq: int, endpoint: str) -> Interaction:
    path = f"/key_1/{sign(SECRET, QUERY)}/{endpoint}"
    return Interaction(
        seq=seq,
        start=0.0,
        duration=0.01,
        session_id=None,
        action_type=None,
        user=None,
        request=RecordedRequest("GET", path, QUERY, (), b""),
        response=RecordedResponse(200, (("Content-Type", "text/plain"),), endpoint.encode()),
    )


@pytest.mark.parametrize("endpoint", ONESHOT_ENDPOINTS)
def test_every_oneshot_endpoint_is_redacted_and_replayed(tmp_path, endpoint):
    signature = sign(SECRET, QUERY)
    path = tmp_path / f"{endpoint}.msgpack"
    redactor = Redactor()
    with CassetteWriter(path, upstream="http://upstream", mode=WriteMode.NEW) as writer:
        writer.append(redactor.redact(_oneshot(writer.next_seq(), endpoint)))
    assert signature.encode() not in path.read_bytes()
    assert f"/key_1/<redacted>/{endpoint}".encode() in path.read_bytes()

    player = Player((path,))
    try:
        live = player.live_key("GET", f"/key_1/{sign('other', QUERY)}/{endpoint}", QUERY, b"")
        found = player.find(live, None)
        assert not hasattr(found, "reason"), found
        assert player.answer(found, session=None, now=0.0).body == endpoint.encode()
    finally:
        player.close()


@pytest.mark.parametrize(
    ("seconds", "credits"), [(0.5, 1), (60.0, 1), (60.0000001, 1), (60.01, 2), (181, 4)]
)
def test_audit_bills_as_the_emulator_bills(tmp_path, seconds, credits):
    """`audit` computes credits with the contract's rule (the emulator's): same at 60.0000001 s."""
    assert credits_between(100.0, 100.0 + seconds) == credits
    path = tmp_path / "billing.msgpack"
    created = b'{"success":true,"session":{"id":"sess_b","status":"active"}}'
    with CassetteWriter(path, upstream="http://upstream", mode=WriteMode.NEW) as writer:
        writer.append(
            exchange(1, 0.0, "POST", "/v1/sessions", b"{}", 201, created, sid="sess_b", duration=0)
        )
        writer.append(
            exchange(2, seconds, "DELETE", "/v1/sessions/sess_b", sid="sess_b", duration=0)
        )
    with open_cassette(path) as cassette:
        (session,) = audit_cassettes([cassette]).sessions
    assert (session.credits, session.credits_source) == (credits, "computed")
