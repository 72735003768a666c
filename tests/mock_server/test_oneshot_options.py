"""Parsing of the one-shot endpoints' query options into browser settings (no browser)."""

from __future__ import annotations

import base64

import pytest

from mock_server.devices import DEVICES
from mock_server.errors import BadRequestError
from mock_server.oneshot.capture import gif_size
from mock_server.oneshot.options import Query, parse_animated, parse_image, parse_pdf


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_options_device_user_agent_and_http_auth_become_context_options():
    query = Query(
        "emulateDevice=iphone_15_pro&darkMode=true"
        f"&userAgent={b64url('Bot/1.0 (test)')}&httpAuth={b64url('alice:pa:ss')}"
        "&url=example.com"
    )
    opts = parse_image(query, allow_file=False).page
    context = opts.context_options()
    device = DEVICES["iphone_15_pro"]
    assert opts.url == "https://example.com"
    assert context["viewport"] == {"width": device.viewport.width, "height": device.viewport.height}
    assert context["device_scale_factor"] == device.viewport.deviceScaleFactor
    assert context["is_mobile"] is True and context["has_touch"] is True
    assert context["user_agent"] == "Bot/1.0 (test)"  # an explicit userAgent wins over the device's
    assert context["http_credentials"] == {"username": "alice", "password": "pa:ss"}
    assert context["color_scheme"] == "dark"


def test_options_unknown_device_falls_back_for_animated_only():
    query = "emulateDevice=no_such_phone&url=https%3A%2F%2Fexample.com"
    assert parse_animated(Query(query), allow_file=False).page.device is None
    with pytest.raises(BadRequestError, match="emulateDevice"):
        parse_image(Query(query), allow_file=False)


def test_options_pdf_lengths_convert_to_pixels():
    opts = parse_pdf(
        Query("width=8.5in&height=11in&marginTop=1cm&marginRight=10mm&marginBottom=72pt"
              "&marginLeft=0&url=https%3A%2F%2Fexample.com"),
        allow_file=False,
    )  # fmt: skip
    assert opts.paper == {"width": 816.0, "height": 1056.0}
    assert opts.margin is not None
    assert opts.margin["top"] == pytest.approx(37.795, abs=0.01)
    assert opts.margin["right"] == pytest.approx(37.795, abs=0.01)
    assert opts.margin["bottom"] == pytest.approx(96.0)
    assert opts.margin["left"] == 0


def test_options_large_gifs_are_scaled_down_and_small_ones_kept():
    assert gif_size(320, 240, 1) == (320, 240)
    width, height = gif_size(1440, 900, 3)
    assert width * height <= 1920 * 1200 and abs(width / height - 1.6) < 0.01


def test_options_query_takes_plus_as_space_and_ignores_empty_values():
    query = Query("waitFor=div+p&vw=&url=example.com")
    assert query.text("waitFor") == "div p"
    assert parse_image(query, allow_file=False).page.width == 1440
