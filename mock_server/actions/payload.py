"""Readers for the fields of an action's payload: each returns the typed value or raises
`BadRequestError` naming the field, so handlers read their payload in a line each.

What each action accepts is written in the README ("Actions: payload fields the contract does
not name"); the limits below are its numbers. Imports nothing of Playwright or aiohttp.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, TypeVar

from mock_server.errors import BadRequestError

DEFAULT_SELECTOR_TIMEOUT_MS = 3000
MAX_SELECTOR_TIMEOUT_MS = 30000

_E = TypeVar("_E", bound=StrEnum)
Payload = dict[str, Any]


def pick(payload: Payload, *names: str) -> tuple[str, Any]:
    """The first present key among `names` (a field and its aliases) and its value."""
    for name in names:
        if name in payload and payload[name] is not None:
            return name, payload[name]
    return names[0], None


def optional_text(payload: Payload, *names: str) -> str | None:
    """A string field (or the first of its aliases present), None when absent."""
    name, value = pick(payload, *names)
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"payload.{name} must be a string")
    return value


def text(payload: Payload, *names: str) -> str:
    """A required string field (or the first of its aliases present)."""
    value = optional_text(payload, *names)
    if value is None:
        raise BadRequestError(f"payload.{names[0]} is required (a string)")
    return value


def optional_selector(payload: Payload) -> str | None:
    selector = optional_text(payload, "selector")
    if selector is not None and not selector.strip():
        raise BadRequestError("payload.selector must not be empty")
    return selector


def selector(payload: Payload) -> str:
    found = optional_selector(payload)
    if found is None:
        raise BadRequestError("payload.selector is required (a string)")
    return found


def flag(payload: Payload, name: str, default: bool) -> bool:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequestError(f"payload.{name} must be a boolean")
    return value


def whole(value: object, name: str) -> int:
    """An integer; a float with no fraction (JSON `5.0`) counts, a boolean does not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"{name} must be an integer")
    return value


def integer(
    payload: Payload,
    name: str,
    default: int,
    *,
    minimum: int,
    maximum: int | None = None,
    clamp: bool = False,
) -> int:
    """An integer field within [minimum, maximum]; above it is clamped when `clamp`."""
    if payload.get(name) is None:
        return default
    value = whole(payload[name], f"payload.{name}")
    if value < minimum:
        raise BadRequestError(f"payload.{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        if clamp:
            return maximum
        raise BadRequestError(f"payload.{name} must be <= {maximum}")
    return value


def timeout_ms(
    payload: Payload,
    default: int = DEFAULT_SELECTOR_TIMEOUT_MS,
    maximum: int = MAX_SELECTOR_TIMEOUT_MS,
) -> int:
    """`timeoutMs`: the step's own limit (the action budget may cut it shorter)."""
    return integer(payload, "timeoutMs", default, minimum=1, maximum=maximum, clamp=True)


def number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"{name} must be a finite number")
    return float(value)


# Coordinates and scroll amounts in CSS px: past this, no page has them and the mouse cannot get
# there (Chromium would spend the whole action budget trying).
MAX_PIXELS = 10_000_000


def pixels(value: object, name: str) -> float:
    found = number(value, name)
    if abs(found) > MAX_PIXELS:
        raise BadRequestError(f"{name} must be within ±{MAX_PIXELS} px (got {found:g})")
    return found


def point(value: object, name: str) -> tuple[float, float]:
    if not isinstance(value, dict) or "x" not in value or "y" not in value:
        raise BadRequestError(f"{name} must be an object with numeric x and y")
    return pixels(value["x"], f"{name}.x"), pixels(value["y"], f"{name}.y")


def coordinates(payload: Payload) -> tuple[float, float] | None:
    """Optional `x`+`y` viewport coordinates (both or neither)."""
    has_x, has_y = payload.get("x") is not None, payload.get("y") is not None
    if not has_x and not has_y:
        return None
    if has_x != has_y:
        raise BadRequestError("payload.x and payload.y must be given together")
    return point(payload, "payload")


def choice(payload: Payload, name: str, enum: type[_E], default: _E) -> _E:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in enum.__members__.values():
        valid = ", ".join(m.value for m in enum)
        raise BadRequestError(f"payload.{name} must be one of: {valid} (got {value!r})")
    return enum(value)


def string_list(payload: Payload, name: str) -> list[str]:
    """An array of strings; a lone string is not accepted here (callers that allow one say so)."""
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"payload.{name} must be an array of strings")
    return value
