"""Device keys in Capture's style and the table built from Playwright-shaped descriptors."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server.devices import DOCUMENTED_ALIASES, build_devices, capture_key


def descriptor(width: int, height: int, ua: str = "UA") -> dict[str, Any]:
    return {
        "user_agent": ua,
        "viewport": {"width": width, "height": height},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("iPhone 15 Pro", "iphone_15_pro"),
        ("iPad (gen 7) landscape", "ipad_gen_7_landscape"),
        ("Galaxy S9+", "galaxy_s9"),
        ("Pixel 4a (5G)", "pixel_4a_5g"),
        ("Desktop Chrome HiDPI", "desktop_chrome_hidpi"),
    ],
)
def test_capture_key(name: str, key: str):
    assert capture_key(name) == key


def test_aliases_copy_their_nearest_descriptor_and_never_replace_a_real_one():
    nearest = {near for _, near in DOCUMENTED_ALIASES.values()}
    descriptors = {name: descriptor(100 + i, 200) for i, name in enumerate(sorted(nearest))}
    descriptors["iPad Air"] = descriptor(820, 1180, "real iPad Air")
    devices = build_devices(descriptors)
    assert len(devices) == len(descriptors) + len(DOCUMENTED_ALIASES) - 1
    assert devices["ipad_air"].userAgent == "real iPad Air"  # Playwright's own entry wins
    s23 = devices["galaxy_s23"]
    assert (s23.name, s23.key) == ("Galaxy S23", "galaxy_s23")
    assert s23.viewport == devices["galaxy_s24"].viewport
    assert s23.viewport.isLandscape is False and "screen" not in s23.as_json()


def test_two_names_with_one_key_are_refused():
    with pytest.raises(ValueError, match="galaxy_s9"):
        build_devices({"Galaxy S9+": descriptor(1, 2), "Galaxy S9": descriptor(1, 2)})
