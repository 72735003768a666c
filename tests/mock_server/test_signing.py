"""The one-shot URL signature: the reference's test vectors, the raw-query rule, and the
401 answers of an emulator run with a users table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from capture import Capture
from yarl import URL

from mock_server.config import read_users_file
from mock_server.errors import UnauthorizedError
from mock_server.signing import (
    INVALID_HASH,
    UNKNOWN_KEY,
    sign,
    verify_body_signature,
    verify_signature,
)
from recorder.contract import sign_body
from tests.emulator import RunningEmulator, emulator_config
from tests.pages import PageServer


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("url=https%3A%2F%2Fnews.ycombinator.com%2F", "f37d5fb3ee4540a05bf4ffeed6dffa28"),
        ("full=true&delay=3&url=https%3A%2F%2Fcapture.page%2F", "0e944abb6d823d0c8618dc22e508be6d"),
        ("delay=3&url=https%3A%2F%2Fcapture.page%2F", "27e77d8cd67d43e3a490a926c53a4516"),
    ],
)
def test_sign_matches_reference_vectors(query: str, expected: str):
    assert sign("test", query) == expected
    verify_signature({"test": "test"}, "test", expected, query)


def test_sign_matches_the_official_sdk():
    url = Capture("test", "test").build_image_url("https://news.ycombinator.com/")
    assert url == (
        "https://cdn.capture.page/test/f37d5fb3ee4540a05bf4ffeed6dffa28/image"
        "?url=https%3A%2F%2Fnews.ycombinator.com%2F"
    )


def test_verify_hashes_the_raw_query_without_canonicalising():
    # Same parameters, other order / encoding: another hash, as each client signs what it sends.
    sorted_plus = "delay=3&q=a+b&url=https%3A%2F%2Fcapture.page%2F"
    verify_signature({"k": "s"}, "k", sign("s", sorted_plus), sorted_plus)
    with pytest.raises(UnauthorizedError, match=INVALID_HASH):
        verify_signature({"k": "s"}, "k", sign("s", sorted_plus), sorted_plus.replace("+", "%20"))
    verify_signature({"k": "s"}, "k", sign("s", sorted_plus).upper(), sorted_plus)


def test_verify_rejects_unknown_key_and_bad_hash_and_accepts_anything_without_users():
    with pytest.raises(UnauthorizedError, match=UNKNOWN_KEY):
        verify_signature({"k": "s"}, "other", sign("s", "url=x"), "url=x")
    with pytest.raises(UnauthorizedError, match=INVALID_HASH):
        verify_signature({"k": "s"}, "k", sign("s", "url=x"), "url=y")
    with pytest.raises(UnauthorizedError, match=INVALID_HASH):
        verify_signature({"k": "s"}, "k", "not-a-hash", "url=x")
    verify_signature(None, "anyone", "anything", "url=x")


async def get_json(base: str, path: str) -> tuple[int, dict]:
    """GET with the query sent byte for byte (a plain str URL would be re-encoded by yarl)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(URL(base + path, encoded=True)) as resp:
            assert resp.content_type == "application/json"
            return resp.status, await resp.json()


@pytest_asyncio.fixture
async def signed_emulator() -> AsyncIterator[RunningEmulator]:
    running = await RunningEmulator(emulator_config(users={"test": "test"})).start()
    yield running
    await running.stop()


@pytest.mark.browser
async def test_emulator_with_users_checks_the_signature(
    signed_emulator: RunningEmulator, pages: PageServer
):
    query = "url=" + quote(pages.url("/"), safe="")
    good = f"/test/{sign('test', query)}/metadata?{query}"
    status, body = await get_json(signed_emulator.url, good)
    assert status == 200, body
    assert body["metadata"]["title"] == "Capture test index"

    tampered = good[:-2] + ("0" if good[-2] != "0" else "1") + good[-1]
    status, body = await get_json(signed_emulator.url, tampered)
    assert (status, body) == (401, {"success": False, "error": INVALID_HASH})

    unknown = f"/nobody/{sign('test', query)}/metadata?{query}"
    status, body = await get_json(signed_emulator.url, unknown)
    assert (status, body) == (401, {"success": False, "error": UNKNOWN_KEY})


@pytest.mark.browser
async def test_emulator_without_users_accepts_any_hash(
    emulator: RunningEmulator, pages: PageServer
):
    query = "url=" + quote(pages.url("/"), safe="")
    status, body = await get_json(emulator.url, f"/whoever/0000/metadata?{query}")
    assert status == 200, body
    assert body["metadata"]["title"] == "Capture test index"


def test_batch_signatures_accept_each_secret_of_a_users_file(tmp_path):
    # `serve --users FILE` gives each user a tuple of secrets: a batch signed with any is good.
    users_file = tmp_path / "users.txt"
    users_file.write_text("u:primary\nu:api-secret\nother:x\n", encoding="utf-8")
    users = read_users_file(users_file)
    body = b'{"data":[{"url":"http://127.0.0.1:1/"}]}'
    for secret in ("primary", "api-secret"):
        verify_body_signature(users, "u", sign_body(secret, body), body)
    with pytest.raises(UnauthorizedError, match="x-req-signature"):
        verify_body_signature(users, "u", sign_body("x", body), body)
    with pytest.raises(UnauthorizedError, match=UNKNOWN_KEY):
        verify_body_signature(users, "nobody", sign_body("x", body), body)
