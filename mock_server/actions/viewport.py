"""Viewport emulation asked by an action's payload: validated on every action, applied on
`goto`, `screenshot` and any action with `screenshot: true` (the dispatcher decides when).

The precedence rules are in the README (Actions: payload fields the contract does not name).
An explicit viewport (`vw`/`vh`, `viewport`, `scaleFactor`) without `emulateDevice` returns the page
to a desktop: the payload's device scale factor or 1, the standard user agent, no touch, not
mobile, even after an earlier `emulateDevice`.
Imports no aiohttp: HTTP is the API layer's.
"""

from __future__ import annotations

from mock_server.actions.payload import Payload, number, whole
from mock_server.browser import DEFAULT_DEVICE_SCALE_FACTOR, SessionPage, Viewport
from mock_server.devices import DEVICES
from mock_server.errors import BadRequestError
from recorder.fields import VIEWPORT_OBJECT

MAX_VIEWPORT_SIDE = 5000
MAX_DEVICE_SCALE_FACTOR = 3.0

_VIEWPORT_OBJECT_KEYS = frozenset(VIEWPORT_OBJECT.documented)


def _scale_factor(value: object, name: str) -> float:
    factor = number(value, name)
    if not 0 < factor <= MAX_DEVICE_SCALE_FACTOR:
        raise BadRequestError(f"{name} must be > 0 and <= {MAX_DEVICE_SCALE_FACTOR:g}")
    return factor


def _side(value: object, name: str) -> int:
    side = whole(value, name)
    if not 1 <= side <= MAX_VIEWPORT_SIDE:
        raise BadRequestError(f"{name} must be between 1 and {MAX_VIEWPORT_SIDE}")
    return side


def _viewport_object(raw: object) -> tuple[tuple[int, int], float | None]:
    if not isinstance(raw, dict):
        raise BadRequestError("payload.viewport must be an object {width, height}")
    extra = sorted(set(raw) - _VIEWPORT_OBJECT_KEYS)
    if extra:
        raise BadRequestError(
            f"payload.viewport has unknown field(s): {', '.join(extra)}; "
            "allowed: width, height, deviceScaleFactor"
        )
    if "width" not in raw or "height" not in raw:
        raise BadRequestError("payload.viewport needs width and height")
    size = (
        _side(raw["width"], "payload.viewport.width"),
        _side(raw["height"], "payload.viewport.height"),
    )
    dpr = raw.get("deviceScaleFactor")
    if dpr is None:
        return size, None
    return size, _scale_factor(dpr, "payload.viewport.deviceScaleFactor")


def viewport_change(payload: Payload, current: Viewport) -> Viewport | None:
    """The viewport the payload asks for, or None when it asks for no change."""
    size: tuple[int, int] | None = None
    dpr: float | None = None
    if payload.get("viewport") is not None:
        size, dpr = _viewport_object(payload["viewport"])
    vw, vh = payload.get("vw"), payload.get("vh")
    if (vw is None) != (vh is None):
        raise BadRequestError("payload.vw and payload.vh must be given together")
    if vw is not None:
        vw_vh = (_side(vw, "payload.vw"), _side(vh, "payload.vh"))
        size = size or vw_vh
    for name in ("scaleFactor", "deviceScaleFactor"):  # the later one wins
        if payload.get(name) is not None:
            explicit = _scale_factor(payload[name], f"payload.{name}")
            dpr = explicit if name == "deviceScaleFactor" or dpr is None else dpr
    device_key = payload.get("emulateDevice")
    if device_key is not None:
        if not isinstance(device_key, str) or device_key not in DEVICES:
            raise BadRequestError(
                f"Unknown emulateDevice {device_key!r}; GET /screenshot/devices lists the keys"
            )
        device = DEVICES[device_key]
        vp = device.viewport
        return Viewport(
            width=vp.width,
            height=vp.height,
            device_scale_factor=vp.deviceScaleFactor,
            is_mobile=vp.isMobile,
            has_touch=vp.hasTouch,
            user_agent=device.userAgent,
        )
    if size is None and dpr is None:
        return None
    width, height = size or (current.width, current.height)
    return Viewport(
        width=width,
        height=height,
        device_scale_factor=dpr if dpr is not None else DEFAULT_DEVICE_SCALE_FACTOR,
    )


async def apply_viewport(sp: SessionPage, vp: Viewport) -> None:
    """Emulate through CDP: Playwright cannot change DPR, UA or mobile on a live page."""
    cdp = await sp.cdp()
    await cdp.send(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": vp.width,
            "height": vp.height,
            "deviceScaleFactor": vp.device_scale_factor,
            "mobile": vp.is_mobile,
            "screenWidth": vp.width,
            "screenHeight": vp.height,
        },
    )
    user_agent = vp.user_agent or sp.standard_user_agent
    if user_agent is not None and user_agent != (sp.viewport.user_agent or sp.standard_user_agent):
        await cdp.send("Emulation.setUserAgentOverride", {"userAgent": user_agent})
    if vp.has_touch != sp.viewport.has_touch:
        await cdp.send(
            "Emulation.setTouchEmulationEnabled",
            {"enabled": vp.has_touch, "maxTouchPoints": 5 if vp.has_touch else 1},
        )
    sp.viewport = vp
