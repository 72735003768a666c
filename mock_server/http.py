"""The emulator's HTTP edges: JSON answers in the contract's shape, body reading, the error
middleware (every error a JSON body, never an HTML page or a traceback), the journal middleware,
and how a replayed answer or a miss goes on the wire."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from mock_server.clock import Clock
from mock_server.errors import (
    CaptureError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)
from mock_server.json_body import json_bytes, parse_json
from mock_server.replay.player import Answer, Miss
from mock_server.state import CLOCK, FAULT_JOURNAL, JOURNAL, REPLAY, SOURCE

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
REPLAY_HEADER = "X-Capture-Replay"
ADMIN_PREFIX = "/__admin/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json_bytes(body), status=status, content_type=JSON_TYPE)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    return parse_json(await request.read(), optional=optional)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CaptureError as err:
        return json_response(err.body(), err.status)
    except web.HTTPRequestEntityTooLarge as err:
        return json_response(
            PayloadTooLargeError(f"Request body too large: {err.text}").body(), 413
        )
    except web.HTTPMethodNotAllowed as err:
        allowed = ", ".join(sorted(err.allowed_methods))
        e = MethodNotAllowedError(
            f"Method {request.method} not allowed on {request.path}; use {allowed}"
        )
        return json_response(e.body(), 405)
    except web.HTTPNotFound:
        return json_response(
            NotFoundError(f"No route for {request.method} {request.path}").body(), 404
        )
    except web.HTTPException as err:
        return json_response({"success": False, "error": err.reason}, err.status)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"success": False, "error": "Internal error"}, 500)


@web.middleware
async def journal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep the journal of this run (`GET /__admin/requests`); admin calls are not in it."""
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    response = await handler(request)
    app = request.app
    default = "live" if app[REPLAY].engine is None else "emulator"
    app[JOURNAL].add(
        at=app[CLOCK].now(),
        method=request.method,
        path=request.path,
        status=response.status,
        source=request.get(SOURCE, default),
    )
    app[JOURNAL].entries[-1].update(request.get(FAULT_JOURNAL, {}))
    return response


@functools.lru_cache(maxsize=4)
def format_http_date(ts: int) -> str:
    return email.utils.formatdate(ts, usegmt=True)


async def replayed_response(
    request: web.Request, answer: Answer, latency: str | float | None, clock: Clock
) -> web.Response:
    """A replayed answer on the wire, after the configured latency."""
    if latency == "recorded":
        await asyncio.sleep(answer.duration)
    elif isinstance(latency, float | int) and latency > 0:
        await asyncio.sleep(latency / 1000)
    headers = CIMultiDict(answer.headers)
    headers[REPLAY_HEADER] = "hit"
    # The mock's clock, not wall time, so two replays under --clock manual are identical.
    headers["Date"] = format_http_date(int(clock.now()))
    request[SOURCE] = answer.source
    return web.Response(status=answer.status, body=answer.body, headers=headers)


def miss_response(request: web.Request, miss: Miss) -> web.Response:
    response = json_response(miss.body(), 502)
    response.headers[REPLAY_HEADER] = "miss"
    request[SOURCE] = "miss"
    return response
