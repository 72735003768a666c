"""The image options' aliases and defaults, parsed without a browser."""

from __future__ import annotations

import pytest

from mock_server.errors import BadRequestError
from mock_server.oneshot.options import ImageType, Query, parse_animated, parse_image

URL = "url=https%3A%2F%2Fexample.com"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ImageType.PNG),
        ("bestFormat=true", ImageType.WEBP),
        ("bestFormat=false", ImageType.PNG),
        ("bestFormat=true&type=png", ImageType.PNG),
        ("format=jpg", ImageType.JPEG),
        ("format=WEBP", ImageType.WEBP),
        ("type=png&format=jpeg", ImageType.PNG),  # type wins
    ],
)
def test_type_format_and_best_format(query: str, expected: ImageType):
    assert parse_image(Query(f"{query}&{URL}"), allow_file=False).type is expected


@pytest.mark.parametrize(
    ("query", "full"),
    [("", False), ("full=true", True), ("fullPage=true", True), ("full=0&fullPage=true", False)],
)
def test_full_page_alias(query: str, full: bool):
    assert parse_image(Query(f"{query}&{URL}"), allow_file=False).full_page is full


def test_hide_scrollbars_defaults_to_true():
    assert parse_animated(Query(URL), allow_file=False).hide_scrollbars is True
    shown = parse_animated(Query(f"hideScrollbars=false&{URL}"), allow_file=False)
    assert shown.hide_scrollbars is False


@pytest.mark.parametrize(
    ("query", "name"),
    [("format=gif", "format"), ("type=tiff&format=png", "type"), ("fullPage=1x", "fullPage")],
)
def test_bad_values_name_the_option_used(query: str, name: str):
    with pytest.raises(BadRequestError, match=rf"^{name} must be"):
        parse_image(Query(f"{query}&{URL}"), allow_file=False)


def test_dark_mode_context_allows_the_injected_stylesheet():
    context = parse_image(Query(f"darkMode=true&{URL}"), allow_file=False).page.context_options()
    assert context["color_scheme"] == "dark" and context["bypass_csp"] is True
