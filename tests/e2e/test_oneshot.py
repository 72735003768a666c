"""The signed one-shot endpoints (image, pdf, content, metadata, animated) driven by the official
Python SDK (`capture-sdk`) against the emulator on real Chromium and the local fixture pages.

One emulator and one page server serve the whole module (one browser launch); the SDK's edge
URL is pointed at the emulator for each test and restored after it.
"""

from __future__ import annotations

import base64
import io
import re
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from capture import Capture
from PIL import Image
from yarl import URL

from mock_server.browser import BrowserManager
from mock_server.http import error_middleware
from mock_server.oneshot import setup_oneshot
from mock_server.serving import listen_on_loopback
from tests.emulator import RunningEmulator, emulator_config
from tests.pages import BASIC_AUTH, PageServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[PageServer]:
    server = PageServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu() -> AsyncIterator[RunningEmulator]:
    running = await RunningEmulator(emulator_config()).start()
    yield running
    await running.stop()


@pytest.fixture
def client(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Capture:
    monkeypatch.setattr(Capture, "EDGE_URL", emu.url)
    return Capture("key", "secret", {"useEdge": True})


async def fetch(url: str) -> tuple[int, str, bytes]:
    """GET a signed URL exactly as built (no re-encoding): status, content type, body."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(URL(url, encoded=True)) as resp:
            return resp.status, resp.content_type, await resp.read()


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def media_box(pdf: bytes) -> tuple[float, float]:
    """Width and height in points of the first page (Chromium writes MediaBox uncompressed)."""
    match = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert match, "no MediaBox in the PDF"
    return float(match.group(1)), float(match.group(2))


def gif_durations(data: bytes) -> list[int]:
    gif = image(data)
    durations = []
    for frame in range(gif.n_frames):
        gif.seek(frame)
        durations.append(gif.info["duration"])
    return durations


# -- image -------------------------------------------------------------------------------------


async def test_image_default_is_a_1440x900_png(client: Capture, site: PageServer):
    status, content_type, body = await fetch(client.build_image_url(site.url("/")))
    assert (status, content_type) == (200, "image/png")
    assert image(body).format == "PNG"
    assert image(body).size == (1440, 900)


async def test_image_viewport_and_scale_factor(client: Capture, site: PageServer):
    data = await client.fetch_image(site.url("/"), {"vw": 400, "vh": 300})
    assert image(data).size == (400, 300)
    data = await client.fetch_image(site.url("/"), {"vw": 400, "vh": 300, "scaleFactor": 2})
    assert image(data).size == (800, 600)


@pytest.mark.parametrize(
    ("kind", "content_type", "pil_format"),
    [("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP"), ("png", "image/png", "PNG")],
)
async def test_image_type_and_resize(
    client: Capture, site: PageServer, kind: str, content_type: str, pil_format: str
):
    url = client.build_image_url(
        site.url("/"), {"type": kind, "vw": 640, "vh": 480, "resizeWidth": 200, "resizeHeight": 100}
    )
    status, got_type, body = await fetch(url)
    assert (status, got_type) == (200, content_type)
    assert image(body).format == pil_format
    assert image(body).size == (200, 100)


async def test_image_transparent_webp_keeps_alpha(client: Capture, site: PageServer):
    url = client.build_image_url(
        site.url("/mouse"), {"type": "webp", "transparent": True, "vw": 800, "vh": 600}
    )
    status, content_type, body = await fetch(url)
    assert (status, content_type) == (200, "image/webp")
    shot = image(body).convert("RGBA")
    assert shot.size == (800, 600)
    assert shot.getpixel((700, 500))[3] == 0  # outside #pad: no page background
    assert shot.getpixel((10, 10))[3] == 255  # inside #pad


async def test_image_full_page_clip_and_selector(client: Capture, site: PageServer):
    full = image(await client.fetch_image(site.url("/long"), {"full": True, "vw": 300, "vh": 200}))
    assert full.width == 300 and full.height > 4000
    clip = {"top": 10, "left": 20, "width": 120, "height": 60, "vw": 400, "vh": 300}
    assert image(await client.fetch_image(site.url("/"), clip)).size == (120, 60)
    element = image(await client.fetch_image(site.url("/counter"), {"selectorId": "hover-target"}))
    assert element.width == 100 and element.height in (50, 51)  # fractional y: 50 or 51 rows


async def test_image_dark_mode_sets_prefers_color_scheme(client: Capture, site: PageServer):
    small = {"vw": 50, "vh": 50}
    light = image(await client.fetch_image(site.url("/dark"), small)).convert("RGB")
    dark = image(await client.fetch_image(site.url("/dark"), {**small, "darkMode": True}))
    assert light.getpixel((25, 25)) == (255, 255, 255)
    assert dark.convert("RGB").getpixel((25, 25)) == (0, 0, 0)


async def test_image_emulate_device_sets_viewport_and_scale(client: Capture, site: PageServer):
    data = await client.fetch_image(site.url("/"), {"emulateDevice": "iphone_se_3rd_gen"})
    assert image(data).size == (375 * 2, 667 * 2)


# -- pdf ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "points"),
    [
        ({}, (595, 842)),
        ({"format": "Letter"}, (612, 792)),
        ({"format": "a4", "landscape": True}, (842, 595)),
        ({"width": "4in", "height": "6in", "marginTop": "0.5in", "marginRight": "0.5in",
          "marginBottom": "0.5in", "marginLeft": "0.5in", "scale": 0.5}, (288, 432)),
    ],
)  # fmt: skip
async def test_pdf_page_size(
    client: Capture, site: PageServer, options: dict[str, Any], points: tuple[int, int]
):
    status, content_type, body = await fetch(client.build_pdf_url(site.url("/"), options))
    assert (status, content_type) == (200, "application/pdf")
    assert body.startswith(b"%PDF")
    width, height = media_box(body)
    assert width == pytest.approx(points[0], abs=1.5)
    assert height == pytest.approx(points[1], abs=1.5)


# -- content and metadata ----------------------------------------------------------------------


async def test_content_has_html_text_and_markdown(client: Capture, site: PageServer):
    status, content_type, _ = await fetch(client.build_content_url(site.url("/")))
    assert (status, content_type) == (200, "application/json")
    content = await client.fetch_content(site.url("/"), {"waitFor": "#title"})
    assert content["success"] is True
    assert '<h1 id="title">Hello from the test index</h1>' in content["html"]
    assert "Hello from the test index" in content["textContent"]
    assert "console.log" not in content["textContent"]
    assert "# Hello from the test index" in content["markdown"]
    assert "**local**" in content["markdown"]


async def test_content_http_auth_reaches_a_protected_page(client: Capture, site: PageServer):
    status, _, body = await fetch(client.build_content_url(site.url("/auth")))
    assert status == 400 and b"httpAuth" in body
    # Wrong credentials: Chromium shows the server's 401 page, as a browser would.
    wrong = await client.fetch_content(site.url("/auth"), {"httpAuth": b64url("a:b")})
    assert wrong["textContent"] == "auth required"
    allowed = await client.fetch_content(
        site.url("/auth"), {"httpAuth": b64url(":".join(BASIC_AUTH))}
    )
    assert allowed["textContent"] == "welcome"


async def test_metadata_reads_meta_tags_and_leaves_unknown_fields_null(
    client: Capture, site: PageServer
):
    status, content_type, _ = await fetch(client.build_metadata_url(site.url("/meta")))
    assert (status, content_type) == (200, "application/json")
    answer = await client.fetch_metadata(site.url("/meta"))
    assert answer == {
        "success": True,
        "metadata": {
            "title": "Open Graph title",
            "description": "A page with metadata",
            "image": site.url("/images/cover.png"),
            "lang": "fr",
            "author": "Ada Lovelace",
            "publisher": "Capture Replay Tests",
            "logo": site.url("/logo.png"),
            "url": "https://example.test/articles/1",
            "date": "2026-01-02T03:04:05.000Z",
            "feed": site.url("/feed.xml"),
            "audio": None,
            "video": None,
            "iframe": None,
        },
    }
    bare = (await client.fetch_metadata(site.url("/counter")))["metadata"]
    assert bare["title"] == "Counter"
    assert bare["url"] == site.url("/counter")
    assert [k for k, v in bare.items() if v is not None] == ["title", "url"]


# -- animated ----------------------------------------------------------------------------------


async def test_animated_gif_has_frames_size_and_duration(client: Capture, site: PageServer):
    url = client.build_animated_url(site.url("/animated"), {"duration": 2, "vw": 320, "vh": 240})
    status, content_type, body = await fetch(url)
    assert (status, content_type) == (200, "image/gif"), body[:500]
    gif = image(body)
    assert gif.format == "GIF"
    assert gif.size == (320, 240)
    durations = gif_durations(body)
    assert len(durations) >= 3
    assert sum(durations) == pytest.approx(2000, abs=100)


# -- errors ------------------------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("endpoint", "query", "message"),
    [
        ("image", "vw=0&url=https%3A%2F%2Fexample.com", "vw"),
        ("image", "vh=abc&url=https%3A%2F%2Fexample.com", "vh"),
        ("image", "scaleFactor=4&url=https%3A%2F%2Fexample.com", "scaleFactor"),
        ("image", "delay=61&url=https%3A%2F%2Fexample.com", "delay"),
        ("image", "type=gif&url=https%3A%2F%2Fexample.com", "type"),
        ("image", "full=yes&url=https%3A%2F%2Fexample.com", "full"),
        ("image", "resizeWidth=10&url=https%3A%2F%2Fexample.com", "resizeHeight"),
        ("image", "userAgent=%25%25%25&url=https%3A%2F%2Fexample.com", "userAgent"),
        ("image", "httpAuth=bm9jb2xvbg&url=https%3A%2F%2Fexample.com", "httpAuth"),
        ("image", "url=ftp%3A%2F%2Fexample.com%2Ff", "http"),
        ("image", "url=javascript%3Aalert(1)", "http"),
        ("image", "url=http%3A%2F%2F", "URL"),
        ("image", "vw=100", "url is required"),
        ("pdf", "format=B5&url=https%3A%2F%2Fexample.com", "format"),
        ("pdf", "scale=3&url=https%3A%2F%2Fexample.com", "scale"),
        ("pdf", "width=10in&url=https%3A%2F%2Fexample.com", "width and height"),
        ("pdf", "width=10furlongs&height=1in&url=https%3A%2F%2Fexample.com", "width"),
        ("pdf", "marginTop=1in&url=https%3A%2F%2Fexample.com", "four margins"),
        ("animated", "duration=31&url=https%3A%2F%2Fexample.com", "duration"),
        ("animated", "delay=26&url=https%3A%2F%2Fexample.com", "delay"),
        ("content", "url=file%3A%2F%2F%2Fetc%2Fpasswd", "http"),
        ("image", "fullPage=yes&url=https%3A%2F%2Fexample.com", "fullPage"),
        ("image", "format=gif&url=https%3A%2F%2Fexample.com", "format"),
        ("image", "bestFormat=maybe&url=https%3A%2F%2Fexample.com", "bestFormat"),
        ("animated", "hideScrollbars=2&url=https%3A%2F%2Fexample.com", "hideScrollbars"),
        ("image", "emulateDevice=nokia_3310&url=https%3A%2F%2Fexample.com", "emulateDevice"),
    ],
)
async def test_bad_options_are_400_json(
    emu: RunningEmulator, endpoint: str, query: str, message: str
):
    status, body = await emu.call("GET", f"/key/anyhash/{endpoint}?{query}", token=None)
    assert status == 400, body
    assert body["success"] is False
    assert message in body["error"]


async def test_unreachable_page_is_502_json(emu: RunningEmulator):
    target = quote(f"http://127.0.0.1:{unused_port()}/", safe="")
    status, body = await emu.call("GET", f"/key/anyhash/content?url={target}", token=None)
    assert status == 502, body
    assert body["success"] is False
    assert "ERR_CONNECTION_REFUSED" in body["error"]


async def test_one_shot_route_does_not_shadow_other_routes(emu: RunningEmulator):
    status, body = await emu.call("GET", "/v1/sessions/image", token=None)
    assert status == 401, body  # the sessions route, asking for a Bearer token
    status, body = await emu.call("GET", "/key/hash/screenshot?url=x", token=None)
    assert status == 404 and body["success"] is False


async def test_over_budget_is_504_json(chromium: str, site: PageServer):
    app = web.Application(middlewares=[error_middleware])
    manager = BrowserManager(chromium, pool_size=0)
    setup_oneshot(app, manager, None, timeout=1.0)
    runner = web.AppRunner(app, access_log=None)
    base = await listen_on_loopback(runner)
    try:
        target = quote(site.url("/slow?s=20"), safe="")
        status, content_type, body = await fetch(f"{base}/k/h/image?url={target}")
        assert (status, content_type) == (504, "application/json")
        assert b'"success":false' in body
    finally:
        await runner.cleanup()
        await manager.close()
