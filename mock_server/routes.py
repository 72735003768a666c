"""Capture's routes: `/v1/sessions...` and `/screenshot/devices`, and the replay of signed
one-shot URLs. Each handler authenticates, finds the session in the registry, then asks the
replay engine (when cassettes are loaded) and runs live what it hands back."""

from __future__ import annotations

from aiohttp import web

from mock_server.auth import authenticate
from mock_server.cdp import with_connect_url
from mock_server.devices import device_list
from mock_server.field_warnings import screen_action, screen_create
from mock_server.http import Handler, json_response, miss_response, replayed_response
from mock_server.live import inactive_error
from mock_server.replay.engine import GoLive, Outcome
from mock_server.replay.player import Miss
from mock_server.sessions import Session, parse_create_request
from mock_server.state import CLOCK, CONFIG, LIVE, REGISTRY, REPLAY, SOURCE
from recorder.contract import DEVICES_PATH, SESSIONS_PATH, SIGNED_PATH


async def current_user(request: web.Request) -> str:
    user = authenticate(request.headers.get("Authorization"), request.app[CONFIG].users)
    await request.app[REGISTRY].sweep()
    return user


async def session_of(request: web.Request) -> Session:
    user = await current_user(request)
    return await request.app[REGISTRY].lookup(request.match_info["session_id"], user)


async def answer(request: web.Request, outcome: Outcome) -> web.StreamResponse | None:
    """The replayed answer or miss for `outcome`; None when it is to run live."""
    if isinstance(outcome, GoLive):
        if outcome.source:
            request[SOURCE] = outcome.source
        return None
    if isinstance(outcome, Miss):
        return miss_response(request, outcome)
    app = request.app
    return await replayed_response(request, outcome, app[CONFIG].latency, app[CLOCK])


async def create_session(request: web.Request) -> web.StreamResponse:
    app = request.app
    user = await current_user(request)
    raw = await request.read()
    screen_create(request, raw)
    options = parse_create_request(raw, app[CONFIG].default_ttl)
    engine = app[REPLAY].engine
    if engine is not None:
        outcome = await engine.create(user, options, request.path, request.query_string, raw)
        replayed = await answer(request, outcome)
        if replayed is not None:
            return replayed
    session = await app[REGISTRY].create(user, options)
    body = with_connect_url(request, session, session.created_json())
    return json_response({"success": True, "session": body}, 201)


async def get_session(request: web.Request) -> web.StreamResponse:
    return await session_state(request, await session_of(request))


async def close_session(request: web.Request) -> web.StreamResponse:
    session = await session_of(request)
    await request.app[REGISTRY].close(session)
    return await session_state(request, session)


async def session_state(request: web.Request, session: Session) -> web.StreamResponse:
    """GET and DELETE need no browser: the recorded answer when replaying, else the mock's own
    view of the session."""
    engine = request.app[REPLAY].engine
    if engine is not None:
        found = engine.session_answer(session, request.method, request.path, request.query_string)
        if found is not None:
            replayed = await answer(request, found)
            assert replayed is not None
            return replayed
    return json_response(
        {"success": True, "session": with_connect_url(request, session, session.snapshot())}
    )


async def execute_action(request: web.Request) -> web.StreamResponse:
    app = request.app
    session = await session_of(request)
    if not session.active:
        raise inactive_error(session)
    raw = await request.read()
    screen_action(request, session, session.expires_in(app[CLOCK].now()), raw)
    engine = app[REPLAY].engine
    if engine is not None:
        outcome = await engine.action(session, request.path, request.query_string, raw)
        replayed = await answer(request, outcome)
        if replayed is not None:
            return replayed
    result = await app[LIVE].act(session, raw)
    return json_response({"success": True, **result})


async def list_devices(request: web.Request) -> web.Response:
    devices = device_list()
    return json_response({"success": True, "count": len(devices), "devices": devices})


@web.middleware
async def oneshot_replay_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay a recorded one-shot (signed URL) before its live handler is reached."""
    engine = request.app[REPLAY].engine
    if engine is None or request.method != "GET" or not SIGNED_PATH.match(request.path):
        return await handler(request)
    replayed = await answer(request, engine.oneshot(request.path, request.query_string))
    return replayed if replayed is not None else await handler(request)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(SESSIONS_PATH, create_session)
    r.add_get(SESSIONS_PATH + "/{session_id}", get_session)
    r.add_delete(SESSIONS_PATH + "/{session_id}", close_session)
    r.add_post(SESSIONS_PATH + "/{session_id}/actions", execute_action)
    r.add_get(DEVICES_PATH, list_devices)
