"""A request's JSON body as the contract wants it read: an invalid body is a 400 in the
contract's error shape, never a traceback. JSON's strict grammar holds: no `NaN` or `Infinity`,
no lone surrogate in a string, and nesting deeper than Python's recursion allows is a 400 too.
Imports no aiohttp (replay and live use it too)."""

from __future__ import annotations

import json
import re
from typing import Any

from mock_server.errors import BadRequestError

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def parse_json(raw: bytes, *, optional: bool = False) -> Any:
    """The decoded body; an empty one is None when `optional`, else a 400."""
    if not raw.strip():
        if optional:
            return None
        raise BadRequestError("A JSON body is required")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError as err:
        raise BadRequestError("Request body is not valid JSON: nested too deeply") from err
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequestError(f"Request body is not valid JSON: {err}") from err
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise BadRequestError("Request body is not valid JSON: a string holds a lone surrogate")
    return value


def json_bytes(body: Any) -> bytes:
    """A JSON answer's bytes, as every answer of the emulator writes them (compact, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
