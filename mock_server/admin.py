"""The admin API under `/__admin/`: health, the manual clock, usage, sessions, the journal,
replay misses, the recorded exchanges never served, reset, and loading cassettes at runtime.

A web page must not be able to drive it (even one loaded in the emulator's own browser): a
request carrying an `Origin` other than the server's own is refused (403), admin POSTs take only
`application/json` (415; a page's simple `text/plain` POST needs no CORS preflight), and with an
admin token every admin request needs `Authorization: Bearer <token>` (401). Cassettes are loaded
only from below the cassette folder, and a path outside it is refused without saying whether it
exists.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from aiohttp import web

from mock_server import __version__
from mock_server.cdp import admin_fields
from mock_server.clock import ManualClock
from mock_server.config import Mode
from mock_server.errors import (
    BadRequestError,
    CaptureError,
    ConflictError,
    ForbiddenError,
    UnauthorizedError,
)
from mock_server.field_warnings import WARNINGS, list_warnings
from mock_server.http import ADMIN_PREFIX, Handler, json_response, read_json
from mock_server.replay.engine import ReplayEngine
from mock_server.replay.loading import load_player
from mock_server.state import (
    BROWSER,
    CLOCK,
    CONFIG,
    ENGINE_FACTORY,
    FAULTS,
    JOURNAL,
    LIVE,
    ONESHOT_CACHE,
    REGISTRY,
    REPLAY,
)

MAX_ADVANCE_SECONDS = 10 * 365 * 24 * 3600


class UnsupportedMediaTypeError(CaptureError):
    status = 415


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise ForbiddenError(f"Admin requests from another origin ({origin}) are refused")
    token = request.app[CONFIG].admin_token
    if token is not None and not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()
    ):
        raise UnauthorizedError("The admin API needs Authorization: Bearer <admin token>")
    if request.method == "POST" and request.content_type != "application/json":
        raise UnsupportedMediaTypeError("Admin POSTs take Content-Type: application/json")
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    """200 `ready`; 503 `degraded` (with `error`) while the Playwright driver or the shared
    browser is dead, until the next create or one-shot has restarted it."""
    app = request.app
    clock = app[CLOCK]
    state, reason = app[BROWSER].health()
    body = {
        "success": reason is None,
        "status": state,
        "version": __version__,
        "clock": "manual" if clock.manual else "real",
        "now": clock.now(),
        "browserLaunched": app[BROWSER].launched,
    }
    if reason is not None:
        body["error"] = reason
    return json_response(body, status=200 if reason is None else 503)


async def clock_state(request: web.Request) -> web.Response:
    clock = request.app[CLOCK]
    return json_response({"success": True, "manual": clock.manual, "now": clock.now()})


async def clock_advance(request: web.Request) -> web.Response:
    clock = request.app[CLOCK]
    if not isinstance(clock, ManualClock):
        raise ConflictError("The clock is real; start the server with --clock manual to move time")
    body = await read_json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= MAX_ADVANCE_SECONDS
    ):
        raise BadRequestError(
            f'Expected {{"seconds": N}} with 0 <= N <= {MAX_ADVANCE_SECONDS} (ten years)'
        )
    now = await clock.advance(float(seconds))
    return json_response({"success": True, "now": now})


async def usage(request: web.Request) -> web.Response:
    return json_response({"success": True, "users": request.app[REGISTRY].usage()})


async def sessions(request: web.Request) -> web.Response:
    app = request.app
    found = [dict(s.snapshot(), user=s.user, **admin_fields(app, s)) for s in app[REGISTRY].all()]
    return json_response({"success": True, "count": len(found), "sessions": found})


async def requests(request: web.Request) -> web.Response:
    journal = list(request.app[JOURNAL].entries)
    return json_response({"success": True, "count": len(journal), "requests": journal})


async def unmatched(request: web.Request) -> web.Response:
    engine = request.app[REPLAY].engine
    misses = engine.misses() if engine else []
    diverged = engine.divergences() if engine else []
    return json_response(
        {"success": True, "count": len(misses), "unmatched": misses, "diverged": diverged}
    )


async def unused(request: web.Request) -> web.Response:
    """The recorded exchanges replay never served since start or the last reset."""
    engine = request.app[REPLAY].engine
    found = engine.player.usage.unused() if engine else []
    return json_response({"success": True, "count": len(found), "unused": found})


async def reset(request: web.Request) -> web.Response:
    await reset_state(request.app)
    request.app[FAULTS].clear()
    return json_response({"success": True, "now": request.app[CLOCK].now()})


async def reset_state(app: web.Application) -> None:
    await app[REGISTRY].reset()
    engine = app[REPLAY].engine
    if engine is not None:
        engine.reset()
    clock = app[CLOCK]
    if isinstance(clock, ManualClock):
        clock.reset(app[CONFIG].manual_clock_start)
    app[JOURNAL].clear()
    app[WARNINGS].clear()
    app[ONESHOT_CACHE].clear()


async def cassettes(request: web.Request) -> web.Response:
    """Load or switch cassettes at runtime: `{"cassettes": [paths], "mode": "replay"|"hybrid"}`."""
    app = request.app
    slot = app[REPLAY]
    body = await read_json(request)
    paths = body.get("cassettes") if isinstance(body, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequestError('Expected {"cassettes": ["path", ...], "mode"?: "replay"|"hybrid"}')
    current = slot.mode if slot.mode is not Mode.LIVE else Mode.REPLAY
    mode = body.get("mode", current.value)
    if mode not in (Mode.REPLAY, Mode.HYBRID, Mode.LIVE):
        raise BadRequestError(f"mode must be one of live, replay, hybrid; got {mode!r}")
    engine = None
    if paths and mode != Mode.LIVE:
        player = load_player(app[CONFIG], tuple(within_cassette_dir(app, p) for p in paths))
        make_engine = app.get(ENGINE_FACTORY, ReplayEngine)
        engine = make_engine(player, Mode(mode), app[REGISTRY], app[CLOCK], app[LIVE])
    if slot.engine is not None:
        slot.engine.close()
    slot.engine = engine
    await reset_state(app)
    names = engine.player.names if engine else "none"
    return json_response({"success": True, "mode": slot.mode.value, "cassettes": names})


def within_cassette_dir(app: web.Application, name: str) -> Path:
    """`name` resolved below the cassette folder; anything else is refused without a look."""
    root = (app[CONFIG].cassette_dir or Path.cwd()).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise BadRequestError(f"{name}: cassettes are loaded only from below {root}")
    return path


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/__admin/health", health)
    r.add_get("/__admin/clock", clock_state)
    r.add_post("/__admin/clock/advance", clock_advance)
    r.add_get("/__admin/usage", usage)
    r.add_get("/__admin/sessions", sessions)
    r.add_get("/__admin/requests", requests)
    r.add_get("/__admin/unmatched", unmatched)
    r.add_get("/__admin/warnings", list_warnings)
    r.add_get("/__admin/unused", unused)
    r.add_post("/__admin/reset", reset)
    r.add_post("/__admin/cassettes", cassettes)
