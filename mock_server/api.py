"""The emulated Capture sessions API and the admin routes, as one aiohttp application.

`make_app(config)` builds it; long-lived resources (browser, registry, expiry task) belong to
`app.cleanup_ctx`. One middleware turns every error into the contract's JSON error body, so no
input ever gets an HTML page or a traceback.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from mock_server import __version__
from mock_server.actions import ActionType, parse_action_request, run_action
from mock_server.auth import authenticate
from mock_server.browser import BrowserManager, SessionPage, find_browser
from mock_server.clock import Clock, ManualClock, RealClock
from mock_server.config import ClockMode, Mode, ServerConfig
from mock_server.devices import device_list
from mock_server.errors import (
    ActionTimeoutError,
    BadRequestError,
    BrowserUnavailableError,
    CaptureError,
    ConflictError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    SessionInactiveError,
)
from mock_server.matching import SIGNED_PATH, parse_matchers
from mock_server.oneshot import setup_oneshot
from mock_server.player import STATE_CHANGING, Answer, Miss, Player, ReplayState
from mock_server.sessions import Session, SessionRegistry, parse_create_options
from recorder.errors import CassetteError

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
JOURNAL_SIZE = 10_000
REPLAY_HEADER = "X-Capture-Replay"


@dataclass(slots=True)
class Emulator:
    """What the handlers share: config, clock, sessions and the browser."""

    config: ServerConfig
    clock: Clock
    registry: SessionRegistry
    browser: BrowserManager
    mode: Mode = Mode.LIVE
    player: Player | None = None
    journal: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=JOURNAL_SIZE))
    requests_seen: int = 0


EMULATOR = web.AppKey("emulator", Emulator)
# Where an answer came from (replay, live, miss), for the journal.
SOURCE = web.RequestKey("capture_source", str)


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


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    return parse_json(await request.read(), optional=optional)


def parse_json(raw: bytes, *, optional: bool = False) -> Any:
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


async def create_session(request: web.Request) -> web.StreamResponse:
    emu = emulator(request)
    user = await current_user(request)
    raw = await request.read()
    options = parse_create_options(parse_json(raw, optional=True), emu.config.default_ttl)
    player = emu.player
    if player is not None:
        found = player.start_session(
            player.live_key("POST", request.path, request.query_string, raw)
        )
        if isinstance(found, Miss):
            if emu.mode is Mode.REPLAY:
                return miss_response(emu, request, found, None)
            request[SOURCE] = "live (create not recorded)"
        else:
            recording, fresh_id = found
            session = await emu.registry.create(user, options, fresh_id, with_page=False)
            player.replays[fresh_id] = ReplayState(fresh_id, recording)
            answer = player.answer(
                recording.create,
                session=session,
                now=emu.clock.now(),
                recorded_id=recording.recorded_id,
            )
            return await replay_response(emu, request, answer)
    session = await emu.registry.create(user, options)
    return json_response({"success": True, "session": session.created_json()}, 201)


async def get_session(request: web.Request) -> web.StreamResponse:
    emu = emulator(request)
    session = emu.registry.get(request.match_info["session_id"], await current_user(request))
    return await answer_from_recording_or_state(emu, request, session)


async def close_session(request: web.Request) -> web.StreamResponse:
    emu = emulator(request)
    session = emu.registry.get(request.match_info["session_id"], await current_user(request))
    await emu.registry.close(session)
    return await answer_from_recording_or_state(emu, request, session)


async def answer_from_recording_or_state(
    emu: Emulator, request: web.Request, session: Session
) -> web.StreamResponse:
    """GET and DELETE need no browser: the recorded answer when there is one (time fields from
    the mock's clock), else the mock's own view of the session."""
    state = replay_state(emu, session)
    if state is not None and emu.player is not None:
        key = emu.player.live_key(request.method, request.path, request.query_string, b"", state)
        found = emu.player.find(key, state)
        if not isinstance(found, Miss):
            answer = emu.player.answer(
                found,
                session=session,
                now=emu.clock.now(),
                recorded_id=state.recording.recorded_id,
            )
            return await replay_response(emu, request, answer)
    return json_response({"success": True, "session": session.snapshot()})


def replay_state(emu: Emulator, session: Session) -> ReplayState | None:
    """The replay state of a session still being replayed (not diverged), else None."""
    if emu.player is None:
        return None
    state = emu.player.replays.get(session.id)
    return state if state is not None and state.diverged_at is None else None


async def replay_response(emu: Emulator, request: web.Request, answer: Answer) -> web.Response:
    latency = emu.config.latency
    if latency == "recorded":
        await asyncio.sleep(answer.duration)
    elif isinstance(latency, float | int) and latency > 0:
        await asyncio.sleep(latency / 1000)
    headers = CIMultiDict(answer.headers)
    headers[REPLAY_HEADER] = "hit"
    # The mock's clock, not wall time, so two replays under --clock manual are identical.
    headers["Date"] = format_http_date(int(emu.clock.now()))
    request[SOURCE] = answer.source
    return web.Response(status=answer.status, body=answer.body, headers=headers)


def miss_response(
    emu: Emulator, request: web.Request, miss: Miss, session_id: str | None
) -> web.Response:
    assert emu.player is not None
    emu.player.record_miss(miss, session_id)
    response = json_response(miss.body(), 502)
    response.headers[REPLAY_HEADER] = "miss"
    request[SOURCE] = "miss"
    return response


@functools.lru_cache(maxsize=4)
def format_http_date(ts: int) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def inactive_error(session: Session) -> SessionInactiveError:
    return SessionInactiveError(
        f"Session is not active (status: {session.status.value})",
        expiresInSeconds=0,
        session=session.snapshot(),
    )


async def execute_action(request: web.Request) -> web.StreamResponse:
    emu = emulator(request)
    session = emu.registry.get(request.match_info["session_id"], await current_user(request))
    if not session.active:
        raise inactive_error(session)
    clock = emu.clock
    raw = await request.read()
    state = replay_state(emu, session)
    if state is not None and emu.player is not None:
        key = emu.player.live_key("POST", request.path, request.query_string, raw, state)
        found = emu.player.find(key, state)
        if not isinstance(found, Miss):
            answer = emu.player.answer(
                found, session=session, now=clock.now(), recorded_id=state.recording.recorded_id
            )
            ok = answer.status < 400
            if key.action_type:
                session.count_action(key.action_type, ok)
                if ok and emu.mode is Mode.HYBRID and key.action_type in STATE_CHANGING:
                    # The request as sent (matching may have dropped ignored fields).
                    payload = json.loads(raw).get("payload") or {}
                    state.applied.append((key.action_type, dict(payload)))
            return await replay_response(emu, request, answer)
        if emu.mode is Mode.REPLAY:
            return miss_response(emu, request, found, session.id)
        await diverge(emu, session, state, found)
        request[SOURCE] = "live (diverged)"
    try:
        action_type, payload = parse_action_request(parse_json(raw))
    except BadRequestError as err:
        err.extra["expiresInSeconds"] = session.expires_in(clock.now())
        raise
    result = await run_on_page(emu, session, action_type, payload)
    return json_response(
        {"success": True, "expiresInSeconds": session.expires_in(clock.now()), **result}
    )


async def run_on_page(
    emu: Emulator, session: Session, action_type: ActionType, payload: dict[str, Any]
) -> dict[str, Any]:
    """Run one action under the session's lock; count it; every error carries expiresInSeconds."""
    page = session.page
    if not isinstance(page, SessionPage):
        raise CaptureError(
            "This session has no browser (replay mode); restart with --mode hybrid to run "
            "unrecorded actions live",
            expiresInSeconds=session.expires_in(emu.clock.now()),
        )
    budget = emu.config.action_timeout
    try:
        async with page.lock:
            if not session.active:
                raise inactive_error(session)
            # The backend enforces the budget itself; the outer bound guarantees no request hangs.
            async with asyncio.timeout(budget + 5):
                result = await run_action(page, action_type, payload, timeout_s=budget)
    except SessionInactiveError:
        raise
    except BrowserUnavailableError as err:
        # The page died with its browser: like the cloud's `error` status, the session ends
        # (billed so far, slot freed); the next create gets a relaunched browser.
        session.count_action(action_type.value, ok=False)
        await emu.registry.fail(session)
        err.extra["expiresInSeconds"] = 0
        err.extra["session"] = session.snapshot()
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


async def diverge(emu: Emulator, session: Session, state: ReplayState, miss: Miss) -> None:
    """Hybrid mode: continue a replayed session live from its first miss. A page is opened and
    the session's already replayed state-changing actions are applied again to rebuild it."""
    assert emu.player is not None
    emu.player.record_miss(miss, session.id)
    state.diverged_at = {
        "session": session.id,
        "recordedSession": state.recording.recorded_id,
        "request": miss.description,
        "replayedActions": len(state.applied),
        "closest": miss.closest,
    }
    page = await emu.browser.open_session_page(session.id)
    session.page = page
    async with page.lock:
        for action_type, payload in state.applied:
            payload.pop("screenshot", None)
            try:
                await run_action(
                    page, ActionType(action_type), payload, timeout_s=emu.config.action_timeout
                )
            except Exception as err:  # keep rebuilding: a later step may not depend on this one
                log.warning("rebuilding %s: %s failed: %s", session.id, action_type, err)


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


async def admin_requests(request: web.Request) -> web.Response:
    journal = list(emulator(request).journal)
    return json_response({"success": True, "count": len(journal), "requests": journal})


async def admin_unmatched(request: web.Request) -> web.Response:
    emu = emulator(request)
    player = emu.player
    misses = list(player.misses) if player else []
    diverged = [s.diverged_at for s in player.replays.values() if s.diverged_at] if player else []
    return json_response(
        {"success": True, "count": len(misses), "unmatched": misses, "diverged": diverged}
    )


async def admin_reset(request: web.Request) -> web.Response:
    emu = emulator(request)
    await reset_state(emu)
    return json_response({"success": True, "now": emu.clock.now()})


async def reset_state(emu: Emulator) -> None:
    await emu.registry.reset()
    if emu.player is not None:
        emu.player.reset()
    if isinstance(emu.clock, ManualClock):
        emu.clock.reset(emu.config.manual_clock_start)
    emu.journal.clear()
    emu.requests_seen = 0


async def admin_cassettes(request: web.Request) -> web.Response:
    """Load or switch cassettes at runtime: `{"cassettes": [paths], "mode": "replay"|"hybrid"}`."""
    emu = emulator(request)
    body = await read_json(request)
    paths = body.get("cassettes") if isinstance(body, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequestError('Expected {"cassettes": ["path", ...], "mode"?: "replay"|"hybrid"}')
    mode = body.get("mode", emu.mode.value if emu.mode is not Mode.LIVE else Mode.REPLAY.value)
    if mode not in (Mode.REPLAY, Mode.HYBRID, Mode.LIVE):
        raise BadRequestError(f"mode must be one of live, replay, hybrid; got {mode!r}")
    player = load_player(emu.config, tuple(Path(p) for p in paths)) if paths else None
    if emu.player is not None:
        emu.player.close()
    emu.player, emu.mode = player, Mode(mode) if player else Mode.LIVE
    await reset_state(emu)
    names = player.names if player else "none"
    return json_response({"success": True, "mode": emu.mode.value, "cassettes": names})


def load_player(config: ServerConfig, paths: tuple[Path, ...]) -> Player:
    try:
        matchers = parse_matchers(config.match_on)
    except ValueError as err:
        raise BadRequestError(str(err)) from err
    try:
        return Player(
            paths,
            matchers=matchers,
            ignore=config.ignore,
            exhausted=config.exhausted,
            cycle_sessions=config.cycle_sessions,
        )
    except CassetteError as err:
        raise BadRequestError(str(err)) from err


@web.middleware
async def journal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep the journal of this run (`GET /__admin/requests`)."""
    emu = request.app[EMULATOR]
    if request.path.startswith("/__admin/"):
        return await handler(request)
    response = await handler(request)
    emu.requests_seen += 1
    emu.journal.append(
        {
            "n": emu.requests_seen,
            "at": emu.clock.now(),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "source": request.get(SOURCE, "live" if emu.mode is Mode.LIVE else "emulator"),
        }
    )
    return response


@web.middleware
async def signed_replay_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay a recorded one-shot (signed URL), matched on key, endpoint and query, hash ignored."""
    emu = request.app[EMULATOR]
    player = emu.player
    if player is None or request.method != "GET" or not SIGNED_PATH.match(request.path):
        return await handler(request)
    key = player.live_key("GET", request.path, request.query_string, b"")
    found = player.find(key, None)
    if isinstance(found, Miss):
        if emu.mode is Mode.HYBRID:
            request[SOURCE] = "live (one-shot not recorded)"
            return await handler(request)
        return miss_response(emu, request, found, None)
    return await replay_response(
        emu, request, player.answer(found, session=None, now=emu.clock.now())
    )


# -- app -------------------------------------------------------------------------------------


def make_clock(config: ServerConfig) -> Clock:
    if config.clock == ClockMode.MANUAL:
        return ManualClock(config.manual_clock_start)
    return RealClock()


def make_app(config: ServerConfig) -> web.Application:
    app = web.Application(
        middlewares=[journal_middleware, error_middleware, signed_replay_middleware],
        client_max_size=config.max_body_bytes,
    )
    clock = make_clock(config)
    browser = BrowserManager(
        find_browser(config.browser),
        pool_size=config.context_pool,
        allow_file_urls=config.allow_file_urls,
        max_live=config.max_sessions,
    )

    async def open_page(session_id: str, cdp: bool) -> SessionPage:
        return await browser.open_session_page(session_id, cdp=cdp)

    registry = SessionRegistry(clock, max_sessions=config.max_sessions, opener=open_page)
    player = load_player(config, config.cassettes) if config.cassettes else None
    mode = config.mode if player is not None else Mode.LIVE
    app[EMULATOR] = Emulator(
        config=config, clock=clock, registry=registry, browser=browser, mode=mode, player=player
    )
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
        if app[EMULATOR].player is not None:
            app[EMULATOR].player.close()

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
    r.add_get("/__admin/requests", admin_requests)
    r.add_get("/__admin/unmatched", admin_unmatched)
    r.add_post("/__admin/reset", admin_reset)
    r.add_post("/__admin/cassettes", admin_cassettes)
    return app
