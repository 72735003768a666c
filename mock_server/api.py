"""The emulated Capture sessions API and the admin routes, as one aiohttp application.

`make_app(config)` builds it; long-lived resources (browser, registry, expiry task) belong to
`app.cleanup_ctx`. One middleware turns every error into the contract's JSON error body, so no
input ever gets an HTML page or a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mock_server import __version__
from mock_server.actions import ActionType, parse_action_request, run_action
from mock_server.auth import authenticate
from mock_server.browser import BrowserManager, SessionPage, find_browser
from mock_server.clock import Clock, ManualClock, RealClock
from mock_server.config import ClockMode, ServerConfig
from mock_server.devices import device_list
from mock_server.errors import (
    ActionTimeoutError,
    BadRequestError,
    CaptureError,
    ConflictError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    SessionInactiveError,
)
from mock_server.oneshot import setup_oneshot
from mock_server.sessions import Session, SessionRegistry, parse_create_options

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"


@dataclass(slots=True)
class Emulator:
    """What the handlers share: config, clock, sessions and the browser."""

    config: ServerConfig
    clock: Clock
    registry: SessionRegistry
    browser: BrowserManager


EMULATOR = web.AppKey("emulator", Emulator)


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        status=status,
        content_type=JSON_TYPE,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CaptureError as err:
        return json_response(err.body(), err.status)
    except web.HTTPRequestEntityTooLarge as err:
        return json_response(PayloadTooLargeError(f"Request body too large: {err.text}").body(), 413)
    except web.HTTPMethodNotAllowed as err:
        allowed = ", ".join(sorted(err.allowed_methods))
        e = MethodNotAllowedError(f"Method {request.method} not allowed on {request.path}; use {allowed}")
        return json_response(e.body(), 405)
    except web.HTTPNotFound:
        return json_response(NotFoundError(f"No route for {request.method} {request.path}").body(), 404)
    except web.HTTPException as err:
        return json_response({"success": False, "error": err.reason}, err.status)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"success": False, "error": "Internal error"}, 500)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return None
        raise BadRequestError("A JSON body is required")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequestError(f"Request body is not valid JSON: {err}") from err


def emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR]


async def current_user(request: web.Request) -> str:
    emu = emulator(request)
    user = authenticate(request.headers.get("Authorization"), emu.config.users)
    await emu.registry.sweep()
    return user


# -- sessions API ----------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.Response:
    emu = emulator(request)
    user = await current_user(request)
    options = parse_create_options(await read_json(request, optional=True), emu.config.default_ttl)
    session = await emu.registry.create(user, options)
    return json_response({"success": True, "session": session.created_json()}, 201)


async def get_session(request: web.Request) -> web.Response:
    emu = emulator(request)
    session = emu.registry.get(request.match_info["session_id"], await current_user(request))
    return json_response({"success": True, "session": session.snapshot()})


async def close_session(request: web.Request) -> web.Response:
    emu = emulator(request)
    session = emu.registry.get(request.match_info["session_id"], await current_user(request))
    await emu.registry.close(session)
    return json_response({"success": True, "session": session.snapshot()})


def inactive_error(session: Session) -> SessionInactiveError:
    return SessionInactiveError(
        f"Session is not active (status: {session.status.value})",
        expiresInSeconds=0,
        session=session.snapshot(),
    )


async def execute_action(request: web.Request) -> web.Response:
    emu = emulator(request)
    session = emu.registry.get(request.match_info["session_id"], await current_user(request))
    if not session.active:
        raise inactive_error(session)
    clock = emu.clock
    try:
        action_type, payload = parse_action_request(await read_json(request))
    except BadRequestError as err:
        err.extra["expiresInSeconds"] = session.expires_in(clock.now())
        raise
    result = await run_on_page(emu, session, action_type, payload)
    return json_response({"success": True, "expiresInSeconds": session.expires_in(clock.now()), **result})


async def run_on_page(
    emu: Emulator, session: Session, action_type: ActionType, payload: dict[str, Any]
) -> dict[str, Any]:
    """Run one action under the session's lock; count it; every error carries expiresInSeconds."""
    page = session.page
    assert isinstance(page, SessionPage)
    budget = emu.config.action_timeout
    try:
        async with page.lock:
            if not session.active:
                raise inactive_error(session)
            # The backend enforces the budget itself; the outer bound guarantees no request hangs.
            result = await asyncio.wait_for(
                run_action(page, action_type, payload, timeout_s=budget), budget + 5
            )
    except SessionInactiveError:
        raise
    except CaptureError as err:
        session.count_action(action_type.value, ok=False)
        err.extra["expiresInSeconds"] = session.expires_in(emu.clock.now())
        raise
    except TimeoutError as err:
        session.count_action(action_type.value, ok=False)
        raise ActionTimeoutError(
            f"Action {action_type.value} timed out after {budget:g} s",
            expiresInSeconds=session.expires_in(emu.clock.now()),
        ) from err
    except Exception as err:
        session.count_action(action_type.value, ok=False)
        log.exception("action %s failed unexpectedly", action_type.value)
        if not session.active:
            raise inactive_error(session) from err
        raise CaptureError(
            f"Action {action_type.value} failed: {type(err).__name__}",
            expiresInSeconds=session.expires_in(emu.clock.now()),
        ) from err
    session.count_action(action_type.value, ok=True)
    return result


async def list_devices(request: web.Request) -> web.Response:
    devices = device_list()
    return json_response({"success": True, "count": len(devices), "devices": devices})


# -- admin -----------------------------------------------------------------------------------


async def admin_health(request: web.Request) -> web.Response:
    emu = emulator(request)
    return json_response(
        {
            "success": True,
            "status": "ready",
            "version": __version__,
            "clock": "manual" if emu.clock.manual else "real",
            "now": emu.clock.now(),
            "browserLaunched": emu.browser.launched,
        }
    )


async def admin_clock(request: web.Request) -> web.Response:
    emu = emulator(request)
    return json_response({"success": True, "manual": emu.clock.manual, "now": emu.clock.now()})


async def admin_clock_advance(request: web.Request) -> web.Response:
    emu = emulator(request)
    if not isinstance(emu.clock, ManualClock):
        raise ConflictError("The clock is real; start the server with --clock manual to move time")
    body = await read_json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise BadRequestError('Expected {"seconds": N} with N >= 0')
    now = await emu.clock.advance(float(seconds))
    return json_response({"success": True, "now": now})


async def admin_usage(request: web.Request) -> web.Response:
    return json_response({"success": True, "users": emulator(request).registry.usage()})


async def admin_sessions(request: web.Request) -> web.Response:
    emu = emulator(request)
    sessions = [dict(s.snapshot(), user=s.user) for s in emu.registry.all()]
    return json_response({"success": True, "count": len(sessions), "sessions": sessions})


# -- app -------------------------------------------------------------------------------------


def make_clock(config: ServerConfig) -> Clock:
    if config.clock == ClockMode.MANUAL:
        return ManualClock(config.manual_clock_start)
    return RealClock()


def make_app(config: ServerConfig) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=config.max_body_bytes)
    clock = make_clock(config)
    browser = BrowserManager(
        find_browser(config.browser),
        pool_size=config.context_pool,
        allow_file_urls=config.allow_file_urls,
    )

    async def open_page(session_id: str, cdp: bool) -> SessionPage:
        return await browser.open_session_page(session_id, cdp=cdp)

    registry = SessionRegistry(clock, max_sessions=config.max_sessions, opener=open_page)
    app[EMULATOR] = Emulator(config=config, clock=clock, registry=registry, browser=browser)
    if isinstance(clock, ManualClock):
        clock.subscribe(registry.sweep)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        expiry = None if clock.manual else asyncio.create_task(registry.run_expiry())
        warm = asyncio.create_task(browser.warm_up()) if config.warm_browser else None
        yield
        for task in (expiry, warm):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await registry.close_all()
        await browser.close()

    app.cleanup_ctx.append(lifecycle)

    r = app.router
    r.add_post("/v1/sessions", create_session)
    r.add_get("/v1/sessions/{session_id}", get_session)
    r.add_delete("/v1/sessions/{session_id}", close_session)
    r.add_post("/v1/sessions/{session_id}/actions", execute_action)
    setup_oneshot(app, browser, config.users)
    r.add_get("/screenshot/devices", list_devices)
    r.add_get("/__admin/health", admin_health)
    r.add_get("/__admin/clock", admin_clock)
    r.add_post("/__admin/clock/advance", admin_clock_advance)
    r.add_get("/__admin/usage", admin_usage)
    r.add_get("/__admin/sessions", admin_sessions)
    return app
