"""A request's JSON body as the contract wants it read: an invalid body is a 400 in the
contract's error shape, never a traceback. Imports no aiohttp (replay and live use it too)."""

from __future__ import annotations

import json
from typing import Any

from mock_server.errors import BadRequestError


def parse_json(raw: bytes, *, optional: bool = False) -> Any:
    """The decoded body; an empty one is None when `optional`, else a 400."""
    if not raw.strip():
        if optional:
            return None
        raise BadRequestError("A JSON body is required")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequestError(f"Request body is not valid JSON: {err}") from err


def json_bytes(body: Any) -> bytes:
    """A JSON answer's bytes, as every answer of the emulator writes them (compact, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
