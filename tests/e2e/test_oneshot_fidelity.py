"""The documented image options (`full` over clipping, `darkMode`, `bestFormat`, `hideScrollbars`,
the clients' `fullPage` and `format` spellings), the standard user agent, the device list built
from Playwright's descriptors, and a desktop viewport after `emulateDevice`: real Chromium, the
local test site, URLs built by the official Python SDK (`capture-sdk`).

The emulator, SDK client and fetch helper are test_oneshot's (imported: pytest then provides the
fixtures here too, which ruff reads as redefinitions).
"""

# ruff: noqa: F811

from __future__ import annotations

import base64
import io
import re
from typing import Any

import pytest
from capture import Capture
from PIL import Image
from playwright.async_api import async_playwright

from mock_server.actions import parse_action_request, run_action
from mock_server.browser import BrowserManager, SessionPage
from mock_server.devices import DEVICES, DOCUMENTED_KEYS, capture_key
from tests.e2e.test_oneshot import client, emu, fetch  # noqa: F401
from tests.emulator import RunningEmulator
from tests.pages import PageServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

WHITE = (255, 255, 255)


def near_white(pixel: tuple[int, int, int]) -> bool:
    """White give or take a GIF palette's rounding."""
    return min(pixel) >= 250


def rgb(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf"<p id=\"{element_id}\">([^<]*)</p>", html)
    assert match, html
    return match.group(1)


# -- full, fullPage, format, bestFormat -------------------------------------------------------


async def test_full_overrides_height_clipping(client: Capture, site: PageServer):
    tall = await client.fetch_image(site.url("/long"), {"full": True, "height": 300, "vw": 300})
    assert rgb(tall).width == 300 and rgb(tall).height > 4000
    clipped = await client.fetch_image(
        site.url("/long"), {"full": True, "left": 100, "width": 1200}
    )
    assert rgb(clipped).width == 1200 and rgb(clipped).height > 4000
    # Without full, the same clip is a clip.
    short = await client.fetch_image(site.url("/long"), {"height": 300, "vw": 300})
    assert rgb(short).size == (300, 300)


async def test_full_page_is_an_alias_of_full(client: Capture, site: PageServer):
    shot = rgb(await client.fetch_image(site.url("/long"), {"fullPage": True, "vw": 300}))
    assert shot.width == 300 and shot.height > 4000


async def test_a_clip_outside_the_page_is_400(client: Capture, site: PageServer):
    for options in ({"top": 50_000}, {"full": True, "left": 5000, "width": 100}):
        status, _, body = await fetch(client.build_image_url(site.url("/"), options))
        assert status == 400 and b"clip rectangle" in body, body


@pytest.mark.parametrize(
    ("options", "content_type", "pil_format"),
    [
        ({"format": "jpeg"}, "image/jpeg", "JPEG"),
        ({"format": "webp"}, "image/webp", "WEBP"),
        ({"format": "png"}, "image/png", "PNG"),
        ({"bestFormat": True}, "image/webp", "WEBP"),
        ({"bestFormat": True, "type": "png"}, "image/png", "PNG"),
        ({"bestFormat": True, "format": "jpeg"}, "image/jpeg", "JPEG"),
    ],
)
async def test_format_alias_and_best_format(
    client: Capture, site: PageServer, options: dict[str, Any], content_type: str, pil_format: str
):
    url = client.build_image_url(site.url("/"), {**options, "vw": 320, "vh": 200})
    status, got_type, body = await fetch(url)
    assert (status, got_type) == (200, content_type), body[:300]
    image = Image.open(io.BytesIO(body))
    assert image.format == pil_format and image.size == (320, 200)


# -- darkMode and hideScrollbars ----------------------------------------------------------------


async def test_dark_mode_inverts_a_page_without_dark_styles_and_keeps_images(
    client: Capture, site: PageServer
):
    small = {"vw": 200, "vh": 120}
    light = rgb(await client.fetch_image(site.url("/plain"), small))
    dark = rgb(await client.fetch_image(site.url("/plain"), {**small, "darkMode": True}))
    assert light.getpixel((150, 20)) == WHITE
    assert max(dark.getpixel((150, 20))) < 40  # the white page is now dark
    red, green, blue = dark.getpixel((20, 20))  # the red picture stays red
    assert red > 120 and red - max(green, blue) > 60, (red, green, blue)


async def test_dark_mode_applies_to_animated(client: Capture, site: PageServer):
    options = {"vw": 200, "vh": 120, "duration": 1}
    light = rgb(await client.fetch_animated(site.url("/plain"), options))
    dark = rgb(await client.fetch_animated(site.url("/plain"), {**options, "darkMode": True}))
    assert near_white(light.getpixel((150, 20)))
    assert max(dark.getpixel((150, 20))) < 40


async def test_hide_scrollbars_false_shows_them_on_animated(client: Capture, site: PageServer):
    options = {"vw": 320, "vh": 240, "duration": 1}
    hidden = rgb(await client.fetch_animated(site.url("/overflow"), options))
    shown = rgb(
        await client.fetch_animated(site.url("/overflow"), {**options, "hideScrollbars": False})
    )
    right_edge = [(x, y) for x in range(305, 320) for y in range(0, 220, 5)]
    assert all(near_white(hidden.getpixel(p)) for p in right_edge)
    assert any(not near_white(shown.getpixel(p)) for p in right_edge)
    bottom_edge = [(x, y) for x in range(0, 300, 5) for y in range(225, 240)]
    assert any(not near_white(shown.getpixel(p)) for p in bottom_edge)


# -- the user agent ------------------------------------------------------------------------------


def assert_standard_chrome(user_agent: str) -> None:
    assert "HeadlessChrome" not in user_agent
    assert re.search(r" Chrome/\d+\.0\.0\.0 Safari/537\.36$", user_agent), user_agent


async def test_one_shots_send_a_standard_chrome_user_agent(client: Capture, site: PageServer):
    content = await client.fetch_content(site.url("/ua"))
    header, navigator = text_of(content["html"], "header"), text_of(content["html"], "navigator")
    assert header == navigator
    assert_standard_chrome(header)
    custom = await client.fetch_content(
        site.url("/ua"), {"userAgent": base64.urlsafe_b64encode(b"Bot/1.0").decode()}
    )
    assert text_of(custom["html"], "header") == "Bot/1.0"
    device = await client.fetch_content(site.url("/ua"), {"emulateDevice": "iphone_15_pro"})
    assert text_of(device["html"], "navigator") == DEVICES["iphone_15_pro"].userAgent


async def act(sp: SessionPage, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    action_type, parsed = parse_action_request({"type": action, "payload": payload})
    return await run_action(sp, action_type, parsed, timeout_s=15)


async def page_state(sp: SessionPage) -> dict[str, Any]:
    return await sp.page.evaluate(
        """() => ({ua: navigator.userAgent, dpr: devicePixelRatio, touch: 'ontouchstart' in window,
                  width: innerWidth, height: innerHeight,
                  header: document.getElementById('header').textContent})"""
    )


async def test_sessions_send_a_standard_chrome_user_agent(session: SessionPage, site: PageServer):
    await act(session, "goto", {"url": site.url("/ua")})
    state = await page_state(session)
    assert state["header"] == state["ua"]
    assert_standard_chrome(state["ua"])


@pytest.mark.parametrize("shared_first", [True, False])
async def test_cdp_sessions_send_a_standard_chrome_user_agent(
    chromium: str, site: PageServer, shared_first: bool
):
    # The session's page driven by actions, then what a CDP client drives itself: that page, a
    # page it opens, a context it makes.
    manager = BrowserManager(chromium, pool_size=0)
    try:
        if shared_first:
            await manager.warm_up()
        sp = await manager.open_session_page("sess_cdp", cdp=True)
        await act(sp, "goto", {"url": site.url("/ua")})
        state = await page_state(sp)
        assert state["header"] == state["ua"]
        assert_standard_chrome(state["ua"])
        assert sp.devtools_url is not None
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(sp.devtools_url)
            context = browser.contexts[0]
            other = await browser.new_context()
            pages = [context.pages[0], await context.new_page(), await other.new_page()]
            for page in pages:
                await page.goto(site.url("/ua"))
                ua = await page.evaluate("navigator.userAgent")
                brands = await page.evaluate("JSON.stringify(navigator.userAgentData.brands)")
                assert await page.text_content("#header") == ua
                assert_standard_chrome(ua)
                assert "Headless" not in brands
            await other.close()
        await sp.close()
    finally:
        await manager.close()


async def test_a_viewport_after_emulate_device_is_a_desktop_again(
    session: SessionPage, site: PageServer
):
    await act(session, "goto", {"url": site.url("/ua")})
    desktop = (await page_state(session))["ua"]
    await act(session, "goto", {"url": site.url("/ua"), "emulateDevice": "iphone_15_pro"})
    phone = await page_state(session)
    assert phone["ua"] == phone["header"] == DEVICES["iphone_15_pro"].userAgent
    assert (phone["dpr"], phone["touch"]) == (3, True)

    shot = await act(session, "goto", {"url": site.url("/ua"), "vw": 1440, "vh": 900,
                                       "screenshot": True})  # fmt: skip
    state = await page_state(session)
    assert (state["width"], state["height"], state["dpr"], state["touch"]) == (1440, 900, 1, False)
    assert state["ua"] == state["header"] == desktop
    png = Image.open(io.BytesIO(base64.b64decode(shot["screenshot"]["bodyBase64"])))
    assert png.size == (1440, 900)

    # The `viewport` object does the same, and keeps a scale factor it is given.
    await act(session, "goto", {"url": site.url("/ua"), "emulateDevice": "pixel_8"})
    viewport = {"width": 800, "height": 600, "deviceScaleFactor": 2}
    await act(session, "goto", {"url": site.url("/ua"), "viewport": viewport})
    state = await page_state(session)
    assert (state["width"], state["dpr"], state["touch"], state["ua"]) == (800, 2, False, desktop)


# -- the device list ------------------------------------------------------------------------------


async def test_device_list_is_playwrights_plus_the_documented_keys(emu: RunningEmulator):
    status, data = await emu.call("GET", "/screenshot/devices", token=None)
    assert status == 200 and data["success"] is True
    keys = [d["key"] for d in data["devices"]]
    assert data["count"] == len(keys) >= 100
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", key) for key in keys)
    playwright = await async_playwright().start()
    try:
        descriptors = playwright.devices
    finally:
        await playwright.stop()
    assert set(keys) == {capture_key(name) for name in descriptors} | set(DOCUMENTED_KEYS)
    iphone = next(d for d in data["devices"] if d["key"] == "iphone_15_pro")
    expected = descriptors["iPhone 15 Pro"]
    assert iphone["name"] == "iPhone 15 Pro"
    assert iphone["userAgent"] == expected["user_agent"]
    assert iphone["viewport"] == {
        "width": 393, "height": 659, "deviceScaleFactor": 3,
        "isMobile": True, "hasTouch": True, "isLandscape": False,
    }  # fmt: skip
    assert next(d for d in data["devices"] if d["key"] == "ipad_gen_7")["name"] == "iPad (gen 7)"


async def test_a_documented_alias_renders_as_its_descriptor(client: Capture, site: PageServer):
    shot = rgb(await client.fetch_image(site.url("/"), {"emulateDevice": "galaxy_s23"}))
    viewport = DEVICES["galaxy_s23"].viewport
    assert shot.size == (viewport.width * 3, viewport.height * 3) == (1080, 2340)
