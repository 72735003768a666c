"""The device profiles `emulateDevice` accepts, and the `/screenshot/devices` list shape.

Keys are Capture's snake_case device keys (reference section 6.7). Metrics and user agents follow
Playwright's device descriptors where a matching device exists; phones use their full screen
height (Capture's documented `iphone_15_pro` entry is 393x852 at DPR 3). This module owns static
data only: it imports neither Playwright nor aiohttp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

_IOS_17 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
_IOS_16 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1"
)
_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
_CHROME_VERSION = "126.0.6478.122"


def _android(model: str, *, mobile: bool = True) -> str:
    suffix = "Mobile Safari/537.36" if mobile else "Safari/537.36"
    return (
        f"Mozilla/5.0 (Linux; Android 14; {model}) AppleWebKit/537.36 "
        f"(KHTML, like Gecko) Chrome/{_CHROME_VERSION} {suffix}"
    )


_DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    f"(KHTML, like Gecko) Chrome/{_CHROME_VERSION} Safari/537.36"
)
_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    f"(KHTML, like Gecko) Chrome/{_CHROME_VERSION} Safari/537.36"
)


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

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _phone(name: str, key: str, ua: str, w: int, h: int, dpr: float) -> Device:
    return Device(name, key, ua, DeviceViewport(w, h, dpr, isMobile=True, hasTouch=True))


def _tablet(name: str, key: str, ua: str, w: int, h: int, dpr: float) -> Device:
    return Device(name, key, ua, DeviceViewport(w, h, dpr, isMobile=True, hasTouch=True))


def _desktop(name: str, key: str, ua: str, w: int, h: int, dpr: float = 1) -> Device:
    return Device(
        name, key, ua, DeviceViewport(w, h, dpr, isMobile=False, hasTouch=False, isLandscape=True)
    )


_ALL: tuple[Device, ...] = (
    _phone("iPhone 15 Pro Max", "iphone_15_pro_max", _IOS_17, 430, 932, 3),
    _phone("iPhone 15 Pro", "iphone_15_pro", _IOS_17, 393, 852, 3),
    _phone("iPhone 15", "iphone_15", _IOS_17, 393, 852, 3),
    _phone("iPhone 14 Pro Max", "iphone_14_pro_max", _IOS_16, 430, 932, 3),
    _phone("iPhone 14", "iphone_14", _IOS_16, 390, 844, 3),
    _phone("iPhone 13", "iphone_13", _IOS_16, 390, 844, 3),
    _phone("iPhone SE", "iphone_se", _IOS_16, 375, 667, 2),
    _phone("Pixel 8", "pixel_8", _android("Pixel 8"), 412, 915, 2.625),
    _phone("Pixel 8 Pro", "pixel_8_pro", _android("Pixel 8 Pro"), 448, 998, 3),
    _phone("Pixel 7", "pixel_7", _android("Pixel 7"), 412, 915, 2.625),
    _phone("Galaxy S23", "galaxy_s23", _android("SM-S911B"), 360, 780, 3),
    _phone("Galaxy S24", "galaxy_s24", _android("SM-S921U"), 360, 780, 3),
    _phone("Galaxy A55", "galaxy_a55", _android("SM-A556B"), 384, 832, 2.8125),
    _tablet("iPad", "ipad", _IPAD, 810, 1080, 2),
    _tablet("iPad Air", "ipad_air", _IPAD, 820, 1180, 2),
    _tablet("iPad Mini", "ipad_mini", _IPAD, 768, 1024, 2),
    _tablet("iPad Pro 11", "ipad_pro_11", _IPAD, 834, 1194, 2),
    _tablet("iPad Pro 12.9", "ipad_pro_12_9", _IPAD, 1024, 1366, 2),
    _tablet("Galaxy Tab S9", "galaxy_tab_s9", _android("SM-X710", mobile=False), 800, 1280, 2),
    _desktop("Desktop HD", "desktop_hd", _DESKTOP_CHROME, 1920, 1080),
    _desktop("Desktop", "desktop", _DESKTOP_CHROME, 1440, 900),
    _desktop("Desktop 4K", "desktop_4k", _DESKTOP_CHROME, 3840, 2160),
    _desktop("Laptop", "laptop", _DESKTOP_CHROME, 1366, 768),
    _desktop("MacBook Pro 14", "macbook_pro_14", _MAC_CHROME, 1512, 982, 2),
)

DEVICES: dict[str, Device] = {d.key: d for d in _ALL}


def device_list() -> list[dict[str, Any]]:
    """The `devices` array of `GET /screenshot/devices`, in a stable order."""
    return [d.as_json() for d in _ALL]
