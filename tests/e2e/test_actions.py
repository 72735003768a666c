"""Every session action on real Chromium against the local fixture pages."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from mock_server.actions import ActionType, parse_action_request, run_action
from mock_server.browser import SessionPage
from mock_server.errors import ActionFailedError, ActionTimeoutError, BadRequestError
from mock_server.serving import listen_on_loopback
from tests.pages import PageServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]


async def act(
    sp: SessionPage, action: str, payload: dict[str, Any] | None = None, *, timeout_s: float = 10
) -> dict[str, Any]:
    action_type, parsed = parse_action_request({"type": action, "payload": payload or {}})
    return await run_action(sp, action_type, parsed, timeout_s=timeout_s)


def png_size(answer: dict[str, Any]) -> tuple[int, int]:
    assert answer["contentType"] == "image/png"
    return Image.open(io.BytesIO(base64.b64decode(answer["bodyBase64"]))).size


async def read(sp: SessionPage, selector: str, field: str = "text") -> Any:
    answer = await act(sp, "query", {"selector": selector, "fields": [field]})
    return answer["elements"][0][field]


# -- parsing ---------------------------------------------------------------------------------


async def test_parse_action_request_accepts_php_empty_payload() -> None:
    assert parse_action_request({"type": "title", "payload": []}) == (ActionType.TITLE, {})
    assert parse_action_request({"type": "url"}) == (ActionType.URL, {})


@pytest.mark.parametrize(
    "body",
    [
        {"type": "teleport"},
        {"payload": {}},
        {"type": "goto", "payload": {}, "extra": 1},
        {"type": "goto", "payload": "x"},
        ["goto"],
    ],
)
async def test_parse_action_request_rejects_bad_bodies(body: object) -> None:
    with pytest.raises(BadRequestError):
        parse_action_request(body)


async def test_parse_action_request_lists_valid_types() -> None:
    with pytest.raises(BadRequestError, match="valid types: goto, screenshot"):
        parse_action_request({"type": "teleport"})


async def test_action_type_has_the_27_contract_types() -> None:
    assert len(ActionType) == 27


# -- navigation ------------------------------------------------------------------------------


async def test_goto_answers_url_title_status(session: SessionPage, site: PageServer) -> None:
    answer = await act(session, "goto", {"url": site.url("/counter")})
    assert answer == {"url": site.url("/counter"), "title": "Counter", "status": 200}


async def test_goto_rejects_non_http_urls(session: SessionPage) -> None:
    for url in ("file:///etc/passwd", "chrome://version", "javascript:alert(1)", "about:blank",
                "data:text/html,hi"):  # fmt: skip
        with pytest.raises(BadRequestError, match="only http and https URLs are allowed"):
            await act(session, "goto", {"url": url})


async def test_goto_invalid_wait_until_is_bad_request(
    session: SessionPage, site: PageServer
) -> None:
    with pytest.raises(BadRequestError, match="waitUntil"):
        await act(session, "goto", {"url": site.url("/"), "waitUntil": "networkidle"})


async def test_goto_unreachable_fails_and_session_survives(
    session: SessionPage, site: PageServer
) -> None:
    expected = r"Navigation to http://127\.0\.0\.1:9/ failed: net::ERR_"
    with pytest.raises(ActionFailedError, match=expected):
        await act(session, "goto", {"url": "http://127.0.0.1:9/"})
    answer = await act(session, "goto", {"url": site.url("/counter")})
    assert answer["title"] == "Counter"


async def test_goto_aborted_fails_without_waiting_for_an_error_page(
    session: SessionPage, site: PageServer
) -> None:
    # A 204 aborts the navigation (net::ERR_ABORTED) and Chromium commits no error page, so
    # there is nothing to settle: the answer must not wait the error page's 500 ms for it.
    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", no_content)
    runner = web.AppRunner(app)
    url = await listen_on_loopback(runner) + "/"
    try:
        await act(session, "goto", {"url": site.url("/counter")})
        started = time.monotonic()
        with pytest.raises(ActionFailedError, match="net::ERR_ABORTED"):
            await act(session, "goto", {"url": url})
        assert time.monotonic() - started < 0.45
        answer = await act(session, "goto", {"url": site.url("/form")})
        assert answer["title"] == "Login form"
    finally:
        await runner.cleanup()


async def test_goto_timeout_then_session_usable(session: SessionPage, site: PageServer) -> None:
    started = time.monotonic()
    with pytest.raises(ActionTimeoutError):
        await act(session, "goto", {"url": site.url("/slow?s=10")}, timeout_s=1)
    assert time.monotonic() - started < 4
    assert (await act(session, "goto", {"url": site.url("/form")}))["title"] == "Login form"


async def test_back_forward_reload(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/")})
    await act(session, "goto", {"url": site.url("/counter")})
    assert (await act(session, "back"))["url"] == site.url("/")
    assert (await act(session, "forward", {"waitUntil": "load"}))["url"] == site.url("/counter")
    await act(session, "click", {"selector": "#inc"})
    reloaded = await act(session, "reload")
    assert reloaded["url"] == site.url("/counter") and reloaded["status"] == 200
    assert await read(session, "#count") == "0"  # reload reset the page state


async def test_title_and_url(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/form")})
    assert await act(session, "title") == {"title": "Login form"}
    assert await act(session, "url") == {"url": site.url("/form")}


# -- screenshots and viewport ------------------------------------------------------------------


async def test_screenshot_viewport_and_full_page(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/long")})
    assert png_size(await act(session, "screenshot")) == (1440, 900)
    width, height = png_size(await act(session, "screenshot", {"fullPage": True}))
    assert width == 1440 and height > 4000


async def test_viewport_with_scale_factor_persists(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/")})
    shot = await act(session, "screenshot", {"viewport": {"width": 800, "height": 600,
                                                          "deviceScaleFactor": 2}})  # fmt: skip
    assert png_size(shot) == (1600, 1200)
    assert png_size(await act(session, "screenshot")) == (1600, 1200)  # persists
    # A new viewport without a scale factor is back at DPR 1.
    assert png_size(await act(session, "screenshot", {"vw": 640, "vh": 480})) == (640, 480)
    assert png_size(await act(session, "screenshot", {"scaleFactor": 2})) == (1280, 960)


async def test_emulate_device_sets_user_agent_and_dpr(
    session: SessionPage, site: PageServer
) -> None:
    shot = await act(session, "goto", {"url": site.url("/"), "emulateDevice": "iphone_15_pro",
                                       "screenshot": True})  # fmt: skip
    assert png_size(shot["screenshot"]) == (393 * 3, 659 * 3)  # Playwright's iPhone 15 Pro
    user_agent = await session.page.evaluate("navigator.userAgent")
    assert "iPhone" in user_agent


@pytest.mark.parametrize(
    "payload",
    [
        {"viewport": {"width": 0, "height": 600}},
        {"viewport": {"width": 800}},
        {"viewport": {"width": 800, "height": 600, "zoom": 2}},
        {"vw": 800},
        {"vw": 5001, "vh": 100},
        {"scaleFactor": 0},
        {"deviceScaleFactor": 3.5},
        {"emulateDevice": "nokia_3310"},
        {"vw": "800", "vh": 600},
    ],
)
async def test_bad_viewport_options_are_bad_requests(
    session: SessionPage, payload: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError):
        await act(session, "screenshot", payload)


async def test_screenshot_true_attaches_image(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    answer = await act(session, "click", {"selector": "#inc", "screenshot": True})
    assert answer["matched"] is True
    assert png_size(answer["screenshot"]) == (1440, 900)


# -- interaction -----------------------------------------------------------------------------


async def test_click_by_selector_increments_with_diagnostics(
    session: SessionPage, site: PageServer
) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    answer = await act(session, "click", {"selector": "#inc"})
    await act(session, "click", {"selector": "#inc", "clickCount": 1})
    assert await read(session, "#count") == "2"
    assert answer["matched"] is True and answer["visible"] is True
    assert answer["tagName"] == "button"
    assert answer["elementText"] == "Increment"
    assert answer["attributes"]["id"] == "inc"
    assert answer["attributes"]["data-role"] == "increment"
    box = answer["boundingBox"]
    assert box["width"] == pytest.approx(120)
    assert answer["clickedPoint"] == {"x": box["x"] + 60, "y": box["y"] + 20}
    assert answer["url"] == site.url("/counter")
    assert await act(session, "cursor_position") == answer["clickedPoint"]


async def test_click_by_coordinates(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    box = (await act(session, "query", {"selector": "#inc", "fields": ["bbox"]}))["elements"][0]
    x, y = box["bbox"]["x"] + 10, box["bbox"]["y"] + 10
    answer = await act(session, "click", {"x": x, "y": y})
    assert answer["clickedPoint"] == {"x": x, "y": y}
    assert await read(session, "#count") == "1"


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("click", {"x": 1e308, "y": 10}),
        ("hover", {"x": 10, "y": -1e12}),
        ("move_mouse", {"x": 1e9, "y": 1e9}),
        ("drag_mouse", {"from": {"x": 0, "y": 0}, "to": {"x": 1e308, "y": 0}}),
        ("scroll", {"direction": "down", "amount": 1e308}),
    ],
)
async def test_absurd_coordinates_are_refused_at_once(
    session: SessionPage, site: PageServer, action: str, payload: dict[str, Any]
) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    started = time.monotonic()
    with pytest.raises(BadRequestError, match="px"):
        await act(session, action, payload)
    assert time.monotonic() - started < 1


async def test_click_missing_selector_fails_fast_with_matched_false(
    session: SessionPage, site: PageServer
) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    started = time.monotonic()
    with pytest.raises(ActionFailedError, match="No element matches selector '#nope'") as info:
        await act(session, "click", {"selector": "#nope", "timeoutMs": 300})
    assert time.monotonic() - started < 3
    assert info.value.extra["matched"] is False
    with pytest.raises(ActionFailedError, match="not visible") as info:
        await act(session, "click", {"selector": "#hidden-btn", "timeoutMs": 300})
    assert info.value.extra["matched"] is True and info.value.extra["visible"] is False
    assert (await act(session, "title"))["title"] == "Counter"


async def test_hover_changes_page(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    answer = await act(session, "hover", {"selector": "#hover-target"})
    assert await read(session, "#hovered") == "yes"
    assert answer["tagName"] == "div" and answer["hoveredPoint"]["x"] > 0


async def test_move_drag_and_cursor_position(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/mouse")})
    assert await act(session, "move_mouse", {"x": 50, "y": 60, "steps": 3}) == {"x": 50, "y": 60}
    assert await read(session, "#last") == "50,60"
    moves_after_move = int(await read(session, "#moves"))
    assert moves_after_move >= 1
    answer = await act(session, "drag_mouse", {"path": [{"x": 10, "y": 10}, {"x": 100, "y": 50},
                                                        {"x": 200, "y": 120}]})  # fmt: skip
    assert answer["points"] == 3
    assert int(await read(session, "#moves")) > moves_after_move
    assert await read(session, "#last") == "200,120"
    assert await act(session, "cursor_position") == {"x": 200, "y": 120}
    await act(session, "drag_mouse", {"from": {"x": 1, "y": 2}, "to": {"x": 30, "y": 40}})
    assert await act(session, "cursor_position") == {"x": 30, "y": 40}


async def test_drag_path_limits(session: SessionPage) -> None:
    too_many = [{"x": i, "y": i} for i in range(101)]
    with pytest.raises(BadRequestError, match="2 to 100 points"):
        await act(session, "drag_mouse", {"path": too_many})
    with pytest.raises(BadRequestError):
        await act(session, "drag_mouse", {"path": [{"x": 1, "y": 1}]})


async def test_fill_check_select_type_and_press(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/form")})
    assert (await act(session, "fill", {"selector": "#user", "value": "alice"}))["value"] == "alice"
    await act(session, "fill", {"selector": "#password", "text": "s3cret"})
    assert (await act(session, "check", {"selector": "#agree"}))["checked"] is True
    selected = await act(session, "select", {"selector": "#color", "value": "green"})
    assert selected["selected"] == ["green"]
    await act(session, "type", {"selector": "#notes", "text": "hi"})
    await act(session, "type_text", {"text": " there"})
    assert await read(session, "#user", "value") == "alice"
    assert await read(session, "#password", "value") == "s3cret"
    assert await read(session, "#color", "value") == "green"
    assert await read(session, "#notes", "value") == "hi there"
    assert await session.page.is_checked("#agree")
    unchecked = await act(session, "check", {"selector": "#agree", "checked": False})
    assert unchecked["checked"] is False
    await act(session, "press", {"key": "Enter", "selector": "#user"})
    assert await read(session, "#out") == "submitted:alice"
    assert (await act(session, "press", {"keys": ["a", "Shift+B"]}))["keys"] == ["a", "Shift+B"]
    assert "Enter" in await read(session, "#keys") and "B" in await read(session, "#keys")
    with pytest.raises(BadRequestError, match="Unknown key"):
        await act(session, "press", {"key": "NoSuchKey"})


async def test_scroll_changes_scroll_position(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/long")})
    assert (await act(session, "scroll", {"direction": "down", "amount": 700}))["scrollY"] == 700
    assert (await act(session, "scroll", {"direction": "up", "amount": 200}))["scrollY"] == 500
    assert (await act(session, "scroll", {"x": 0, "y": 0}))["scrollY"] == 0
    into_view = await act(session, "scroll", {"selector": "#bottom"})
    assert into_view["scrollY"] > 3000
    with pytest.raises(BadRequestError):
        await act(session, "scroll", {"direction": "sideways"})


# -- waiting ---------------------------------------------------------------------------------


async def test_wait_for_selector_and_timeout(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/counter")})
    assert (await act(session, "wait_for_selector", {"selector": "#inc"}))["matched"] is True
    hidden = await act(session, "wait_for_selector", {"selector": "#hidden-btn", "visible": False})
    assert hidden["state"] == "attached"
    with pytest.raises(ActionFailedError, match="#hidden-btn"):
        await act(session, "wait_for_selector", {"selector": "#hidden-btn", "timeoutMs": 200})
    started = time.monotonic()
    assert await act(session, "wait_for_timeout", {"timeoutMs": 50}) == {"waitedMs": 50}
    assert time.monotonic() - started >= 0.04
    with pytest.raises(BadRequestError):
        await act(session, "wait_for_timeout", {"timeoutMs": 0})


async def test_wait_for_timeout_clamps_to_2500() -> None:
    from mock_server.actions.payload import integer

    assert (
        integer({"timeoutMs": 99999}, "timeoutMs", 1, minimum=1, maximum=2500, clamp=True) == 2500
    )


# -- reading ---------------------------------------------------------------------------------


async def test_console_and_errors_are_collected(session: SessionPage, site: PageServer) -> None:
    # The page throws from a setTimeout: await that event rather than sleeping.
    async with session.page.expect_event("pageerror", timeout=5000):
        await act(session, "goto", {"url": site.url("/errors")})
    messages = (await act(session, "console"))["messages"]
    assert any(
        m["type"] == "log" and m["text"] == "hello console" and isinstance(m["timestamp"], int)
        for m in messages
    )
    assert any(m["type"] == "warning" and m["text"] == "a warning" for m in messages)
    errors = (await act(session, "errors", {"clear": True}))["errors"]
    assert any("boom from the page" in e["message"] for e in errors)
    assert (await act(session, "errors"))["errors"] == []


async def test_snapshot_has_aria_tree(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/")})
    answer = await act(session, "snapshot")
    assert 'heading "Hello from the test index"' in answer["snapshot"]
    assert answer["title"] == "Capture test index" and answer["url"] == site.url("/")


async def test_content_formats(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/")})
    text = await act(session, "content")
    assert text["format"] == "text"
    assert "Hello from the test index" in text["content"]
    assert "This is a local page served by aiohttp." in text["content"]
    assert "console.log" not in text["content"] and "<" not in text["content"]
    assert "font-family" not in text["content"]
    markdown = (await act(session, "content", {"format": "markdown"}))["content"]
    assert "# Hello" in markdown and "console.log" not in markdown
    html = (await act(session, "content", {"format": "html"}))["content"]
    assert "<h1" in html
    with pytest.raises(BadRequestError, match="format"):
        await act(session, "content", {"format": "pdf"})


async def test_query_500_items_with_attributes(session: SessionPage, site: PageServer) -> None:
    await act(session, "goto", {"url": site.url("/list?n=500")})
    started = time.monotonic()
    answer = await act(session, "query", {"selector": "#items a", "fields": ["text", "href"],
                                          "attributes": ["title", "data-missing"],
                                          "limit": 500})  # fmt: skip
    assert time.monotonic() - started < 2
    assert answer["count"] == 500 and len(answer["elements"]) == 500
    assert answer["elements"][7] == {
        "text": "Item 7",
        "href": site.url("/item/7"),
        "attributes": {"title": "Item 7", "data-missing": None},
    }
    assert answer["fields"] == ["text", "href"] and answer["selector"] == "#items a"


async def test_query_limit_clamp_visible_only_and_fields(
    session: SessionPage, site: PageServer
) -> None:
    await act(session, "goto", {"url": site.url("/list?n=600")})
    clamped = await act(session, "query", {"selector": "li.item", "limit": 1000})
    assert clamped["limit"] == 500 and clamped["count"] == 500
    assert clamped["totalCount"] == 601
    default = await act(session, "query", {"selector": "li.item"})
    assert default["fields"] == ["text"] and default["limit"] == 100
    visible = await act(session, "query", {"selector": "li.item", "visibleOnly": True,
                                           "limit": 500})  # fmt: skip
    assert visible["totalCount"] == 600
    assert all(e["text"] != "invisible" for e in visible["elements"])
    everything = await act(
        session,
        "query",
        {"selector": "li.item:last-of-type, #items li:first-child a", "limit": 5,
         "fields": ["tag", "className", "role", "visible", "bbox", "title", "id", "html"]},
    )  # fmt: skip
    first = everything["elements"][0]
    assert first["tag"] == "a" and first["role"] == "link" and first["visible"] is True
    assert set(first["bbox"]) == {"x", "y", "width", "height"}
    assert everything["elements"][-1]["visible"] is False
    with pytest.raises(BadRequestError, match="valid fields: text, html"):
        await act(session, "query", {"selector": "li", "fields": ["text", "colour"]})
    with pytest.raises(BadRequestError, match="Invalid CSS selector"):
        await act(session, "query", {"selector": "##"})


# -- batch -----------------------------------------------------------------------------------


async def test_batch_runs_in_order(session: SessionPage, site: PageServer) -> None:
    answer = await act(
        session,
        "batch",
        {"actions": [
            {"type": "goto", "payload": {"url": site.url("/counter")}},
            {"type": "click", "payload": {"selector": "#inc"}},
            {"type": "query", "payload": {"selector": "#count"}},
        ]},
    )  # fmt: skip
    assert answer["completed"] == 3
    assert [r["type"] for r in answer["results"]] == ["goto", "click", "query"]
    assert all(r["success"] for r in answer["results"])
    assert answer["results"][2]["elements"] == [{"text": "1"}]


async def test_batch_limits_and_failures(session: SessionPage, site: PageServer) -> None:
    title = {"type": "title"}
    with pytest.raises(BadRequestError, match="at most 25"):
        await act(session, "batch", {"actions": [title] * 26})
    with pytest.raises(BadRequestError, match="nested batch"):
        await act(session, "batch", {"actions": [title, {"type": "batch", "payload": {}}]})
    with pytest.raises(BadRequestError):
        await act(session, "batch", {"actions": []})
    with pytest.raises(ActionFailedError, match="batch action 1 \\(click\\) failed") as info:
        await act(session, "batch", {"actions": [
            {"type": "goto", "payload": {"url": site.url("/counter")}},
            {"type": "click", "payload": {"selector": "#nope", "timeoutMs": 200}},
            title,
        ]})  # fmt: skip
    extra = info.value.extra
    assert extra["failedIndex"] == 1 and extra["completed"] == 1
    assert [r["success"] for r in extra["results"]] == [True, False]
