"""`--users FILE` with several secrets per user: any of them authenticates (Bearer and signed
one-shot URLs), the sessions belong to the user whichever secret created them, the per-user
limit is shared; a malformed line stops `serve` at start naming the file and the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.auth import knows_secret, make_token, secrets_of
from mock_server.config import read_users_file
from mock_server.errors import UnauthorizedError
from mock_server.signing import INVALID_HASH, sign, verify_signature
from recorder.contract import sign_body
from tests.emulator import RunningEmulator, emulator_config

ROOT = Path(__file__).resolve().parents[2]

USERS = """\
# primary secret, then two API secrets of the same user
user_123:primary
other:theirs

user_123:api-secret-1
user_123:api:secret:2
user_123:primary
"""


def test_read_users_file_keeps_every_secret_of_a_user_once(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text(USERS, encoding="utf-8")
    users = read_users_file(path)
    assert users == {
        "user_123": ("primary", "api-secret-1", "api:secret:2"),
        "other": ("theirs",),
    }
    for secret in ("primary", "api-secret-1", "api:secret:2"):
        assert knows_secret(users, "user_123", secret)
    assert not knows_secret(users, "user_123", "theirs")
    assert not knows_secret(users, "nobody", "primary")


def test_a_lone_string_is_one_secret_not_its_characters():
    users = {"u": "secret"}
    assert secrets_of(users, "u") == ("secret",)
    assert not knows_secret(users, "u", "s")


def test_a_signed_url_may_be_signed_with_any_of_the_secrets():
    users = {"key": ("one", "two")}
    query = "url=https%3A%2F%2Fexample.test%2F"
    verify_signature(users, "key", sign("one", query), query)
    verify_signature(users, "key", sign("two", query), query)
    with pytest.raises(UnauthorizedError, match=INVALID_HASH):
        verify_signature(users, "key", sign("three", query), query)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("user_123:secret\nno-colon-here\n", 2),
        ("# comment\n\nuser_123:\n", 3),
        (":secret-without-user\n", 1),
        ("user 123:secret\n", 1),
    ],
)
def test_serve_stops_at_start_on_a_malformed_line_naming_file_and_line(tmp_path, content, line):
    path = tmp_path / "users.txt"
    path.write_text(content, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mock_server.cli", "serve", "--port", "0", "--users", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"Error: {path}, line {line}: expected 'userId:secret' (a userId without spaces, a "
        "colon, a non-empty secret)"
    ]
    assert content.splitlines()[line - 1] not in result.stderr  # it may hold a secret


def test_a_users_file_that_is_not_text_is_named(tmp_path):
    path = tmp_path / "users.bin"
    path.write_bytes(b"user_123:\xff\xfe\n")
    with pytest.raises(ValueError, match=r"users\.bin: not UTF-8 text"):
        read_users_file(path)


@pytest.mark.browser
async def test_two_secrets_of_one_user_share_sessions_and_the_limit(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text(USERS, encoding="utf-8")
    running = await RunningEmulator(emulator_config(users=read_users_file(path))).start()
    primary = make_token("user_123", "primary")
    api = make_token("user_123", "api-secret-1")
    try:
        first = await running.create(token=primary)
        # The session belongs to the user: readable and closable with the other secret.
        assert (await running.get(first["id"], token=api))["id"] == first["id"]
        for token in (api, primary, api, primary):
            await running.create(token=token)
        for token in (api, primary):
            status, body = await running.call("POST", "/v1/sessions", {}, token=token)
            assert status == 429, body
            assert body["activeSessionCount"] == 5
        # Another user's sessions are apart; a secret of another user is refused.
        await running.create(token=make_token("other", "theirs"))
        status, _ = await running.call(
            "POST", "/v1/sessions", {}, token=make_token("user_123", "theirs")
        )
        assert status == 401
        await running.close(first["id"], token=api)
        await running.create(token=api)
        _, usage = await running.call("GET", "/__admin/usage", token=None)
        assert usage["users"]["user_123"]["active"] == 5
    finally:
        await running.stop()


async def test_a_batch_may_be_signed_with_any_of_the_secrets_of_a_users_file(tmp_path):
    """`--users FILE` gives each user a tuple of secrets: a batch signed with any of them passes
    the signature check (here to the 400 of its empty `data`), another secret is 401, never a
    500 from a tuple taken for a secret."""
    path = tmp_path / "users.txt"
    path.write_text(USERS, encoding="utf-8")
    running = await RunningEmulator(emulator_config(users=read_users_file(path))).start()
    raw = b'{"data": []}'
    try:
        for secret, status in (
            ("primary", 400),
            ("api:secret:2", 400),
            ("theirs", 401),
        ):
            got, body = await running.call(
                "POST",
                "/batch-image/user_123",
                raw=raw,
                token=None,
                headers={"x-req-signature": sign_body(secret, raw)},
            )
            assert (got, body["success"]) == (status, False), body
        got, body = await running.call(
            "POST",
            "/batch-image/nobody",
            raw=raw,
            token=None,
            headers={"x-req-signature": sign_body("primary", raw)},
        )
        assert got == 401, body
    finally:
        await running.stop()
