"""The one-shot cache and the local object store on real Chromium, driven by the official Python
SDK's URL builders (`capture-sdk`) against the local test site.

A page that changes between two identical requests shows the cached capture until `fresh=true`
or until the TTL passes on the manual clock; `s3Redirect` answers 302 to the stored object, which
a client following it gets as 403 S3 XML (private) or as the bytes (public-read).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from capture import Capture
from PIL import Image
from yarl import URL

from mock_server.config import Mode
from mock_server.oneshot.cache import DEFAULT_TTL_S
from mock_server.state import OBJECT_STORE
from tests.emulator import RunningEmulator, emulator_config
from tests.pages import COLOUR, PageServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00ff00"
RGB = {RED: (255, 0, 0), BLUE: (0, 0, 255), GREEN: (0, 255, 0)}
SMALL = {"vw": 200, "vh": 120}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningEmulator]:
    storage = tmp_path_factory.mktemp("storage")
    running = await RunningEmulator(emulator_config(storage_dir=storage)).start()
    yield running
    await running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def fresh_emu(emu: RunningEmulator) -> RunningEmulator:
    """The module's emulator with an empty cache and journal, the page red again."""
    COLOUR["value"] = RED
    status, _ = await emu.call("DELETE", "/__admin/oneshot-cache", token=None)
    assert status == 200
    status, _ = await emu.call("POST", "/__admin/reset", {}, token=None)
    assert status == 200
    return emu


def sdk(emu: RunningEmulator, key: str = "key", secret: str = "secret") -> Capture:
    client = Capture(key, secret, {"useEdge": True})
    client.EDGE_URL = emu.url  # this client only; the class keeps the real host
    return client


async def fetch(url: str, *, follow: bool = False) -> tuple[int, aiohttp.ClientResponse, bytes]:
    """GET a URL exactly as built (no re-encoding)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(URL(url, encoded=True), allow_redirects=follow) as resp:
            return resp.status, resp, await resp.read()


def colour_of(png: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


async def sources(emu: RunningEmulator) -> list[str]:
    status, body = await emu.call("GET", "/__admin/requests", token=None)
    assert status == 200
    return [entry["source"] for entry in body["requests"] if entry["path"].endswith("/image")]


async def shoot(emu: RunningEmulator, site: PageServer, **options: Any) -> bytes:
    status, resp, body = await fetch(sdk(emu).build_image_url(site.url("/colour"), SMALL | options))
    assert status == 200, body
    assert resp.content_type == "image/png"
    return body


# -- caching -----------------------------------------------------------------------------------


async def test_identical_requests_get_the_cached_capture_until_fresh_or_the_ttl(
    fresh_emu: RunningEmulator, site: PageServer
):
    first = await shoot(fresh_emu, site)
    assert colour_of(first) == RGB[RED]
    hits = site.hits.get("colour", 0)
    COLOUR["value"] = BLUE
    again = await shoot(fresh_emu, site)
    assert again == first  # byte for byte, and no page was opened
    assert site.hits.get("colour", 0) == hits

    refreshed = await shoot(fresh_emu, site, fresh=True)
    assert colour_of(refreshed) == RGB[BLUE]
    COLOUR["value"] = GREEN
    assert await shoot(fresh_emu, site) == refreshed  # fresh=true refreshed the entry

    await fresh_emu.advance(DEFAULT_TTL_S - 1)
    assert await shoot(fresh_emu, site) == refreshed
    await fresh_emu.advance(1)
    assert colour_of(await shoot(fresh_emu, site)) == RGB[GREEN]
    assert await sources(fresh_emu) == ["live", "cache", "live", "cache", "cache", "live"]


async def test_a_new_timestamp_and_another_user_are_other_entries(
    fresh_emu: RunningEmulator, site: PageServer
):
    await shoot(fresh_emu, site, timestamp=1)
    COLOUR["value"] = BLUE
    assert colour_of(await shoot(fresh_emu, site, timestamp=2)) == RGB[BLUE]
    other = sdk(fresh_emu, key="another-key")
    url = other.build_image_url(site.url("/colour"), SMALL | {"timestamp": 1})
    status, _, body = await fetch(url)
    assert status == 200 and colour_of(body) == RGB[BLUE]  # not the red one the first key has
    assert await sources(fresh_emu) == ["live", "live", "live"]


async def test_delete_empties_the_cache(fresh_emu: RunningEmulator, site: PageServer):
    await shoot(fresh_emu, site)
    status, state = await fresh_emu.call("GET", "/__admin/oneshot-cache", token=None)
    assert status == 200 and state["entries"] == 1 and state["bytes"] > 0
    status, body = await fresh_emu.call("DELETE", "/__admin/oneshot-cache", token=None)
    assert (status, body["removed"]) == (200, 1)
    COLOUR["value"] = BLUE
    assert colour_of(await shoot(fresh_emu, site)) == RGB[BLUE]


async def test_content_and_pdf_are_cached_too(fresh_emu: RunningEmulator, site: PageServer):
    client = sdk(fresh_emu)
    for build in (client.build_content_url, client.build_pdf_url):
        first = await fetch(build(site.url("/colour")))
        second = await fetch(build(site.url("/colour")))
        assert first[0] == second[0] == 200 and first[2] == second[2]
    status, body = await fresh_emu.call("GET", "/__admin/requests", token=None)
    assert [e["source"] for e in body["requests"]] == ["live", "cache", "live", "cache"]


async def test_errors_are_not_cached(fresh_emu: RunningEmulator, site: PageServer):
    url = sdk(fresh_emu).build_image_url(site.url("/colour"), {"waitFor": "[bad", **SMALL})
    for _ in range(2):
        status, _, _ = await fetch(url)
        assert status == 400
    status, body = await fresh_emu.call("GET", "/__admin/oneshot-cache", token=None)
    assert body["entries"] == 0
    assert await sources(fresh_emu) == ["live", "live"]


async def test_least_recently_used_answer_goes_when_the_cache_is_full(site: PageServer):
    COLOUR["value"] = RED
    probe = await RunningEmulator(emulator_config()).start()
    try:
        size = len(await shoot(probe, site))
    finally:
        await probe.stop()
    running = await RunningEmulator(emulator_config(oneshot_cache_bytes=int(size * 2.5))).start()
    try:
        for width in (200, 201, 200, 202, 200, 201):  # 201 is the least recently used at 202
            await shoot(running, site, vw=width)
        assert await sources(running) == ["live", "live", "cache", "live", "cache", "live"]
    finally:
        await running.stop()


async def test_ttl_zero_turns_caching_off(site: PageServer):
    COLOUR["value"] = RED
    running = await RunningEmulator(emulator_config(oneshot_cache_ttl=0)).start()
    try:
        await shoot(running, site)
        COLOUR["value"] = BLUE
        assert colour_of(await shoot(running, site)) == RGB[BLUE]
        assert await sources(running) == ["live", "live"]
    finally:
        await running.stop()


# -- storage and redirects ---------------------------------------------------------------------


async def test_s3_redirect_to_a_private_object_is_403_access_denied(
    fresh_emu: RunningEmulator, site: PageServer
):
    url = sdk(fresh_emu).build_image_url(site.url("/colour"), SMALL | {"s3Redirect": True})
    status, resp, _ = await fetch(url)
    assert status == 302
    location = resp.headers["Location"]
    assert location.startswith(fresh_emu.url + "/__storage/key/") and location.endswith(".png")
    status, resp, body = await fetch(url, follow=True)
    assert status == 403 and resp.content_type == "application/xml"
    assert b"<Code>AccessDenied</Code>" in body and body.startswith(b"<?xml")


async def test_s3_redirect_to_a_public_object_gives_its_bytes(
    fresh_emu: RunningEmulator, site: PageServer
):
    plain = await shoot(fresh_emu, site, fileName="public-shot", s3Acl="public-read")
    client = sdk(fresh_emu)
    url = client.build_image_url(
        site.url("/colour"),
        SMALL | {"fileName": "public-shot", "s3Acl": "public-read", "s3Redirect": True},
    )
    status, resp, _ = await fetch(url)
    assert status == 302 and resp.headers["Location"].endswith("/__storage/key/public-shot.png")
    status, resp, body = await fetch(url, follow=True)
    assert (status, resp.content_type, body) == (200, "image/png", plain)
    stored = fresh_emu.config.storage_dir / "key" / "public-shot.png"
    assert stored.read_bytes() == plain

    pdf_url = client.build_pdf_url(
        site.url("/colour"), {"s3Acl": "public-read", "s3Redirect": True, "fileName": "doc"}
    )
    status, resp, body = await fetch(pdf_url, follow=True)
    assert (status, resp.content_type) == (200, "application/pdf") and body.startswith(b"%PDF")
    status, resp, _ = await fetch(fresh_emu.url + "/__storage/key/missing.png")
    assert status == 404 and resp.content_type == "application/xml"


async def test_skip_upload_stores_nothing(fresh_emu: RunningEmulator, site: PageServer):
    root = fresh_emu.config.storage_dir
    before = sorted(p for p in root.rglob("*"))
    body = await shoot(fresh_emu, site, fileName="skipped", skipUpload=True, timestamp="skip")
    assert colour_of(body) == RGB[RED]
    assert sorted(p for p in root.rglob("*")) == before
    assert not (root / "key" / "skipped.png").exists()


@pytest.mark.parametrize("name", ["../escaped", "sub/escaped", "..", "esc\x00aped"])
async def test_a_file_name_leaving_the_store_is_400_and_writes_nothing(
    fresh_emu: RunningEmulator, site: PageServer, name: str
):
    root: Path = fresh_emu.config.storage_dir
    before = sorted(root.parent.rglob("*"))
    url = sdk(fresh_emu).build_image_url(site.url("/colour"), SMALL | {"fileName": name})
    status, resp, body = await fetch(url)
    assert status == 400 and resp.content_type == "application/json"
    answer = json.loads(body)
    assert answer["success"] is False and "fileName" in answer["error"]
    assert sorted(root.parent.rglob("*")) == before


async def test_the_default_store_is_a_temporary_folder_removed_at_stop(site: PageServer):
    running = await RunningEmulator(emulator_config()).start()
    try:
        url = sdk(running).build_image_url(site.url("/colour"), SMALL | {"fileName": "tmp"})
        status, _, body = await fetch(url)
        assert status == 200
        root = running.app[OBJECT_STORE].root
        assert root is not None and (root / "key" / "tmp.png").read_bytes() == body
    finally:
        await running.stop()
    assert not root.exists()


async def test_animated_is_stored_as_gif(fresh_emu: RunningEmulator, site: PageServer):
    url = sdk(fresh_emu).build_animated_url(
        site.url("/colour"),
        SMALL | {"duration": 1, "fileName": quote("clip"), "s3Acl": "public-read"},
    )
    status, resp, body = await fetch(url)
    assert (status, resp.content_type) == (200, "image/gif")
    status, resp, stored = await fetch(fresh_emu.url + "/__storage/key/clip.gif")
    assert (status, resp.content_type, stored) == (200, "image/gif", body)


# -- replay and hybrid -------------------------------------------------------------------------


async def test_a_replayed_oneshot_stays_replayed_and_only_live_renders_are_cached(
    site: PageServer,
):
    examples = Path(__file__).resolve().parents[2] / "cassettes" / "examples"
    config = emulator_config(mode=Mode.HYBRID, cassettes=(examples / "oneshot.msgpack",))
    running = await RunningEmulator(config).start()
    try:
        client = sdk(running, key="demo", secret="any-secret")
        recorded = client.build_image_url("http://127.0.0.1:8765/", {"vw": 800, "vh": 600})
        first = await fetch(recorded)
        second = await fetch(recorded)
        assert first[0] == second[0] == 200 and first[2] == second[2]
        assert first[1].headers["X-Capture-Replay"] == second[1].headers["X-Capture-Replay"]
        COLOUR["value"] = RED
        live = client.build_image_url(site.url("/colour"), SMALL)
        assert colour_of((await fetch(live))[2]) == RGB[RED]
        COLOUR["value"] = BLUE
        assert colour_of((await fetch(live))[2]) == RGB[RED]
        status, body = await running.call("GET", "/__admin/requests", token=None)
        found = [entry["source"] for entry in body["requests"]]
        assert "cache" not in found[:2] and "live" not in found[0]
        assert found[2:] == ["live (one-shot not recorded)", "cache"]
    finally:
        await running.stop()


async def test_a_store_that_cannot_be_written_is_a_json_error(
    fresh_emu: RunningEmulator, site: PageServer
):
    blocker = fresh_emu.config.storage_dir / "blocked"
    blocker.write_bytes(b"a file where the key's folder would go")
    try:
        client = sdk(fresh_emu, key="blocked")
        status, resp, body = await fetch(client.build_image_url(site.url("/colour"), SMALL))
        assert (status, resp.content_type) == (500, "application/json")
        answer = json.loads(body)
        assert answer["success"] is False and "local object store" in answer["error"]
    finally:
        blocker.unlink()
