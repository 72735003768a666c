"""Warnings and strict mode on real Chromium: a field or selector the real API may not know is
answered with `X-Capture-Replay-Warning` (logged once, counted in `/__admin/warnings`), or
refused with a 400 naming it under `--strict`; chosen aliases pass `--strict` but not
`--strict=documented`."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pytest

from mock_server.config import StrictLevel
from recorder.records import WARNING_HEADER
from tests.emulator import TOKEN, RunningEmulator, emulator_config

pytestmark = pytest.mark.browser

UNKNOWN_FILL = "fill payload.bogus is unknown: neither Capture's docs nor capture-replay name it"
ALIAS_FILL = "fill payload.text is not named by Capture's docs: alias of value"
TEXT_SELECTOR = (
    "click payload.selector uses text=: Playwright-only selector syntax that Capture's docs do "
    "not describe (they take CSS selectors)"
)
UNKNOWN_OPTION = (
    "content option bogus is unknown: neither Capture's docs nor capture-replay name it"
)


async def send(
    emu: RunningEmulator, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any], list[str]]:
    """Status, JSON body and every X-Capture-Replay-Warning value of one request."""
    assert emu.http is not None
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
    async with emu.http.request(method, emu.url + path, data=data, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers.getall(WARNING_HEADER, [])


async def act(emu: RunningEmulator, sid: str, kind: str, payload: dict[str, Any]):
    return await send(
        emu, "POST", f"/v1/sessions/{sid}/actions", {"type": kind, "payload": payload}
    )


async def on_form(emu: RunningEmulator, pages) -> str:
    sid = (await emu.create({"maxTtlSeconds": 300}))["id"]
    status, _, warnings = await act(emu, sid, "goto", {"url": pages.url("/form")})
    assert status == 200 and warnings == []  # goto's url is documented
    return sid


async def warnings_of(emu: RunningEmulator) -> dict[str, dict[str, Any]]:
    status, body, _ = await send(emu, "GET", "/__admin/warnings")
    assert status == 200 and body["count"] == len(body["warnings"])
    return {w["warning"]: w for w in body["warnings"]}


def content_url(pages, extra: str) -> str:
    return f"/user_123/anyhash/content?url={quote(pages.url('/'), safe='')}&{extra}"


async def test_an_unknown_fill_field_warns_once_and_is_counted(emulator, pages, caplog):
    sid = await on_form(emulator, pages)
    caplog.set_level(logging.WARNING, logger="mock_server.field_warnings")
    payload = {"selector": "#user", "value": "ann", "bogus": 1}
    for _ in range(2):
        status, body, warnings = await act(emulator, sid, "fill", payload)
        assert status == 200, body
        assert UNKNOWN_FILL in warnings
        assert any(w.startswith("fill payload.value is not named") for w in warnings)
    status, body, _ = await act(emulator, sid, "query", {"selector": "#user", "fields": ["value"]})
    assert body["elements"] == [{"value": "ann"}]  # the fill itself ran

    seen = await warnings_of(emulator)
    assert seen[UNKNOWN_FILL]["count"] == 2 and seen[UNKNOWN_FILL]["level"] == "unknown"
    first = seen[UNKNOWN_FILL]["first"]
    assert first == {"method": "POST", "path": f"/v1/sessions/{sid}/actions", "journal": 3}
    logged = [r.getMessage() for r in caplog.records if UNKNOWN_FILL in r.getMessage()]
    assert len(logged) == 1

    status, _, _ = await send(emulator, "POST", "/__admin/reset", {})
    assert status == 200 and await warnings_of(emulator) == {}


async def test_playwright_selectors_warn_and_still_work(emulator, pages):
    sid = await on_form(emulator, pages)
    status, body, warnings = await act(emulator, sid, "click", {"selector": "text=Sign in"})
    assert status == 200 and body["tagName"] == "button"
    assert warnings == [TEXT_SELECTOR]
    status, _, warnings = await act(emulator, sid, "click", {"selector": "#submit"})
    assert status == 200 and warnings == []  # plain CSS on a documented field: nothing
    status, _, warnings = await act(emulator, sid, "query", {"selector": 'button:has-text("Sign")'})
    assert any("query payload.selector uses :has-text(" in w for w in warnings)


async def test_an_unknown_oneshot_option_warns(emulator, pages):
    status, body, warnings = await send(emulator, "GET", content_url(pages, "bogus=1"))
    assert status == 200 and body["success"] is True
    assert warnings == [UNKNOWN_OPTION]
    seen = await warnings_of(emulator)
    assert seen[UNKNOWN_OPTION]["first"]["path"] == "/user_123/<hash>/content"


async def test_many_unknown_fields_make_a_bounded_header(emulator, pages):
    sid = await on_form(emulator, pages)
    payload = {"selector": "#user", "value": "x", **{f"k{i}": i for i in range(50)}}
    status, _, warnings = await act(emulator, sid, "fill", payload)
    assert status == 200 and len(warnings) == 21 and warnings[-1].endswith("more")


@pytest.fixture
async def strict(request):
    running = await RunningEmulator(emulator_config(strict=request.param)).start()
    yield running
    await running.stop()


@pytest.mark.parametrize("strict", [StrictLevel.UNKNOWN], indirect=True)
async def test_strict_refuses_unknown_fields_and_playwright_selectors(strict, pages):
    sid = await on_form(strict, pages)
    status, body, warnings = await act(strict, sid, "fill", {"selector": "#user", "bogus": 1})
    assert status == 400 and UNKNOWN_FILL in warnings
    assert body == {"success": False, "error": UNKNOWN_FILL, "expiresInSeconds": 300}
    status, body, _ = await act(strict, sid, "click", {"selector": "text=Sign in"})
    assert status == 400 and body["error"] == TEXT_SELECTOR
    batch = {"actions": [{"type": "click", "payload": {"selector": "text=Sign in"}}]}
    status, body, _ = await act(strict, sid, "batch", batch)
    assert status == 400 and body["error"] == TEXT_SELECTOR
    session = await strict.get(sid)
    assert session["actionBreakdown"]["fill"] == {"total": 1, "success": 0, "error": 1}

    # A chosen alias passes --strict, still with its warning.
    status, body, warnings = await act(strict, sid, "fill", {"selector": "#user", "text": "ann"})
    assert status == 200 and ALIAS_FILL in warnings

    status, body, _ = await send(strict, "GET", content_url(pages, "bogus=1"))
    assert status == 400 and body == {"success": False, "error": UNKNOWN_OPTION}
    status, _, _ = await send(strict, "GET", content_url(pages, "stealth=true"))
    assert status == 200

    status, body, _ = await send(strict, "POST", "/v1/sessions", {"ttl": 60})
    assert status == 400 and body["error"].startswith("create field ttl is unknown")


@pytest.mark.parametrize("strict", [StrictLevel.DOCUMENTED], indirect=True)
async def test_strict_documented_also_refuses_chosen_aliases(strict, pages):
    sid = await on_form(strict, pages)
    status, body, _ = await act(strict, sid, "fill", {"selector": "#user", "text": "ann"})
    assert status == 400 and body["expiresInSeconds"] == 300
    assert body["error"].startswith("fill payload.")  # selector, then text: both chosen
    status, body, _ = await act(strict, sid, "query", {"selector": "#user", "limit": 5})
    assert status == 200, body  # documented fields pass
    status, body, _ = await send(strict, "GET", content_url(pages, "vw=800&vh=600"))
    assert status == 400 and "content option vw" in body["error"]


UNKNOWN_BATCH_OPTION = (
    "image option bogus is unknown: neither Capture's docs nor capture-replay name it"
)


async def post_batch(
    emu: RunningEmulator, options: dict[str, Any], pages, signature: str | None = "any"
) -> tuple[int, dict[str, Any], list[str]]:
    """A one-item `POST /batch-image/user_123` (any signature passes without a users table)."""
    assert emu.http is not None
    raw = json.dumps({"data": [{"url": pages.url("/"), "options": options}]}).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-req-signature"] = signature
    async with emu.http.post(emu.url + "/batch-image/user_123", data=raw, headers=headers) as r:
        return r.status, await r.json(), r.headers.getall(WARNING_HEADER, [])


async def test_a_batch_items_unknown_option_warns_as_its_one_shot_would(emulator, pages):
    status, body, warnings = await post_batch(emulator, {"vw": 800, "vh": 600, "bogus": 1}, pages)
    assert status == 202 and body["success"] is True
    assert warnings == [UNKNOWN_BATCH_OPTION]
    seen = await warnings_of(emulator)
    assert seen[UNKNOWN_BATCH_OPTION]["first"]["path"] == "/batch-image/user_123"


@pytest.mark.parametrize("strict", [StrictLevel.UNKNOWN], indirect=True)
async def test_strict_refuses_a_batch_with_an_unknown_option_before_anything_runs(strict, pages):
    status, body, _ = await post_batch(strict, {"bogus": 1}, pages, signature=None)
    assert status == 401, body  # the signature is answered first, as always
    status, body, _ = await post_batch(strict, {"bogus": 1}, pages)
    assert status == 400 and body == {"success": False, "error": UNKNOWN_BATCH_OPTION}
    status, body, _ = await post_batch(strict, {"selector": "text=Go"}, pages)
    assert status == 400 and body["error"].startswith("image option selector uses text=")
    status, listed, _ = await send(strict, "GET", "/__admin/batches")
    assert status == 200 and listed["count"] == 0, listed
