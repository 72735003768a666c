"""The device profiles `emulateDevice` accepts, and the `/screenshot/devices` list shape.

The list is Playwright's own device descriptors (`playwright.devices`, asked once per process
from Playwright's driver in a worker thread: no browser is launched), keyed in Capture's style
(`capture_key`: "iPhone 15 Pro" -> `iphone_15_pro`, "iPad (gen 7)" -> `ipad_gen_7`), plus the
keys Capture's docs name that Playwright has no descriptor for (`DOCUMENTED_ALIASES`), each a
copy of the nearest Playwright descriptor under Capture's key and name. Nothing else is added.

`DEVICES` is a read-only mapping that loads on first use (about half a second, once per process:
Playwright's driver starts and stops), so importing this module costs nothing and a server that
never meets a device key never asks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

# The device keys Capture's docs name (reference section 6.7).
DOCUMENTED_KEYS = (
    "iphone_15_pro", "iphone_15", "iphone_14", "pixel_8", "galaxy_s23", "ipad", "ipad_pro_12_9",
    "ipad_air", "galaxy_tab_s9", "desktop_hd", "laptop",
)  # fmt: skip

# Documented keys without a Playwright descriptor of their own: (name, nearest descriptor).
DOCUMENTED_ALIASES = {
    "galaxy_s23": ("Galaxy S23", "Galaxy S24"),  # same CSS size and density
    "ipad": ("iPad", "iPad (gen 7)"),
    "ipad_air": ("iPad Air", "iPad Pro 11"),
    "ipad_pro_12_9": ("iPad Pro 12.9", "iPad Pro 11"),
    "desktop_hd": ("Desktop HD", "Desktop Chrome"),  # 1280x720, HD
    "laptop": ("Laptop", "Desktop Chrome HiDPI"),
}


@dataclass(frozen=True, slots=True)
class DeviceViewport:
    width: int
    height: int
    deviceScaleFactor: float  # camelCase: the wire names of the devices list
    isMobile: bool
    hasTouch: bool
    isLandscape: bool = False


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    key: str
    userAgent: str
    viewport: DeviceViewport
    # window.screen, when the descriptor gives one (phones: the full screen, taller than the
    # viewport); not part of the list's shape.
    screen: tuple[int, int] | None = None

    def as_json(self) -> dict[str, Any]:
        entry = asdict(self)
        del entry["screen"]
        return entry


def capture_key(name: str) -> str:
    """Capture's key style: lower case, `_` for every run of spaces and punctuation."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def from_descriptor(name: str, descriptor: dict[str, Any]) -> Device:
    """A Device from one entry of Playwright's Python `devices` (snake_case keys)."""
    width, height = descriptor["viewport"]["width"], descriptor["viewport"]["height"]
    screen = descriptor.get("screen")
    return Device(
        name=name,
        key=capture_key(name),
        userAgent=descriptor["user_agent"],
        viewport=DeviceViewport(
            width=width,
            height=height,
            deviceScaleFactor=descriptor["device_scale_factor"],
            isMobile=descriptor["is_mobile"],
            hasTouch=descriptor["has_touch"],
            isLandscape=width > height,
        ),
        screen=(screen["width"], screen["height"]) if screen else None,
    )


def build_devices(descriptors: dict[str, dict[str, Any]]) -> dict[str, Device]:
    """Every descriptor under its Capture key, then the documented aliases; keys never clash."""
    devices: dict[str, Device] = {}
    for name, descriptor in descriptors.items():
        device = from_descriptor(name, descriptor)
        if device.key in devices:
            raise ValueError(f"Two Playwright devices share the key {device.key!r}")
        devices[device.key] = device
    for key, (name, nearest) in DOCUMENTED_ALIASES.items():
        if key not in devices:
            devices[key] = replace(devices[capture_key(nearest)], name=name, key=key)
    return devices


@functools.cache
def _playwright_descriptors() -> dict[str, dict[str, Any]]:
    """Playwright's device descriptors, from its driver (asked from a worker thread: the sync
    API refuses to run inside a running event loop)."""
    from playwright.sync_api import sync_playwright

    def ask() -> dict[str, dict[str, Any]]:
        with sync_playwright() as playwright:
            return dict(playwright.devices)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright-devices") as pool:
        return pool.submit(ask).result()


@functools.cache
def _devices() -> dict[str, Device]:
    return build_devices(_playwright_descriptors())


class _Devices(Mapping[str, Device]):
    """The device table, loaded from Playwright on first use."""

    def __getitem__(self, key: str) -> Device:
        return _devices()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_devices())

    def __len__(self) -> int:
        return len(_devices())


DEVICES: Mapping[str, Device] = _Devices()


def device_list() -> list[dict[str, Any]]:
    """The `devices` array of `GET /screenshot/devices`, in a stable order (Playwright's, then
    the documented aliases)."""
    return [d.as_json() for d in _devices().values()]
