"""Fault injection on the wire: the middleware that applies the server's fault rules, and the
admin routes that hold them (`/__admin/faults`).

The middleware sits after the admin guard and before anything that answers a Capture request (the
one-shot replay, the routes, the replay engine, the browser), so a fault fires in live, replay and
hybrid modes alike, before the cassette is consulted: a faulted request moves no replay cursor and
runs nothing in the browser. What a fired rule does:

- `status`: the contract's body for that route and status (`recorder.statuses`): its text, with
  `expiresInSeconds` and the `session` snapshot where the contract's schema has them and the
  session exists, the session counts of a 429; `body` replaces it;
- `delay_ms`: waits, then answers as the status says, or (alone) as the server would have;
- `end_session`: the request's session expires now (`expire`: billed up to now, slot freed) or
  ends with status `error` as when its browser crashes (`crash`), through the registry's own
  paths; the request then gets what the session's state says (409 for an action, the snapshot
  for get and close);
- `reset`: the connection is closed with no answer.

MCP tool calls (`/mcp/v1`) are not matched by the middleware but by `tool_fault`, called by the
tools (and by the MCP replay) with the REST request the call stands for
(`recorder.mcp_tools.rest_call`): a rule then counts each tool call once, and its answer becomes a
tool error carrying the REST status and body.

An answer a fault produced carries `X-Capture-Replay: fault` and is journalled with `"source":
"fault"` and the rule's id (`"rule"`). Rules live in each app's own `FaultBook` (never shared
between servers); `POST /__admin/reset` removes them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mock_server.auth import authenticate, decode_bearer
from mock_server.errors import CaptureError, NotFoundError
from mock_server.fault_rules import Call, EndSession, FaultBook, FaultRule
from mock_server.http import ADMIN_PREFIX, REPLAY_HEADER, Handler, json_response, read_json
from mock_server.live import inactive_error
from mock_server.sessions import Session
from mock_server.state import CLOCK, CONFIG, FAULT_JOURNAL, FAULTS, REGISTRY, SOURCE
from recorder.bodies import json_or_none
from recorder.contract import action_type_in, session_id_from_path, signed_parts
from recorder.mcp_tools import RestCall, is_mcp_path
from recorder.statuses import (
    ACTIVE_COUNT,
    EXPIRES_IN,
    MAX_CONCURRENT,
    NOT_FOUND,
    SESSION,
    SESSION_ROUTES,
    Route,
    documented,
    route_of,
)

FAULT_SOURCE = "fault"


async def call_of(request: web.Request, book: FaultBook) -> Call:
    """What the rules can match in `request` (the body is read only when a rule needs the
    action type)."""
    path = request.path
    route = route_of(request.method, path)
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else None
    session = session_id_from_path(path) if route in SESSION_ROUTES else None
    endpoint = user = action = None
    signed = signed_parts(path) if route is Route.ONESHOT else None
    if signed is not None:
        user, _, endpoint = signed
    else:
        try:
            user = decode_bearer(request.headers.get("Authorization"))[0]
        except CaptureError:
            user = None
    if route is Route.ACTION and book.needs_action():
        action = action_type_in(json_or_none(await request.read()))
    return Call(request.method, path, template, action, session, user, endpoint)


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    book = request.app[FAULTS]
    if not book.rules or request.path.startswith(ADMIN_PREFIX) or is_mcp_path(request.path):
        return await handler(request)  # an MCP tool call is matched as its REST call: tool_fault
    call = await call_of(request, book)
    rule = book.fire(call)
    if rule is None:
        return await handler(request)
    request[FAULT_JOURNAL] = {"rule": rule.id}
    if rule.delay_ms:
        await asyncio.sleep(rule.delay_ms / 1000)
    if rule.reset:
        return _drop(request, rule)
    if rule.status is not None:
        response = await _status_answer(request, rule, call)
    elif rule.end_session is not None:
        response = await _end_session(request, rule, call)
    else:
        return await handler(request)  # a delay alone: answered as it would have been
    request[SOURCE] = FAULT_SOURCE
    response.headers[REPLAY_HEADER] = FAULT_SOURCE
    return response


async def _session(request: web.Request, call: Call) -> Session | None:
    """The request's session when it exists and is the caller's."""
    if call.session is None:
        return None
    registry = request.app[REGISTRY]
    await registry.sweep()
    session = registry.find(call.session)
    return session if session is not None and session.user == call.user else None


async def _status_answer(request: web.Request, rule: FaultRule, call: Call) -> web.Response:
    status, body = await _status_body(request, rule, call)
    return json_response(body, status)


async def _status_body(request: web.Request, rule: FaultRule, call: Call) -> tuple[int, Any]:
    """The status and JSON body a status rule answers for `call`."""
    if "body" in rule.given:
        return rule.status or 500, rule.body
    route = call.route
    assert route is not None and rule.status is not None
    entry = documented(route, rule.status)
    assert entry is not None, "a status rule only matches routes that document its status"
    body: dict[str, Any] = {"success": False, "error": entry.text}
    session = await _session(request, call) if SESSION in entry.extra else None
    if session is not None:
        body[EXPIRES_IN] = session.expires_in(request.app[CLOCK].now())
        body[SESSION] = session.snapshot()
    if ACTIVE_COUNT in entry.extra:
        limit = request.app[CONFIG].max_sessions
        body[ACTIVE_COUNT] = limit
        body[MAX_CONCURRENT] = limit
    return rule.status, body


async def _end_session(request: web.Request, rule: FaultRule, call: Call) -> web.Response:
    """End the request's session as its expiry or a crash would, then answer what its state
    says. The caller must be the session's owner (authenticated as the routes do)."""
    try:
        authenticate(request.headers.get("Authorization"), request.app[CONFIG].users)
    except CaptureError as err:
        return json_response(err.body(), err.status)
    session = await _session(request, call)
    if session is None:
        missing = NotFoundError(NOT_FOUND)
        return json_response(missing.body(), missing.status)
    await _end(request, rule, session)
    if call.route is Route.ACTION:
        inactive = inactive_error(session)
        return json_response(inactive.body(), inactive.status)
    return json_response({"success": True, "session": session.snapshot()})


async def _end(request: web.Request, rule: FaultRule, session: Session) -> None:
    registry = request.app[REGISTRY]
    if rule.end_session is EndSession.EXPIRE:
        await registry.expire(session)
    else:
        await registry.fail(session)


def _drop(request: web.Request, rule: FaultRule) -> web.Response:
    """Close the connection with no answer; the response returned is never sent (aiohttp finds
    the transport closing and lets the connection go)."""
    request[SOURCE] = FAULT_SOURCE
    request[FAULT_JOURNAL] = {"rule": rule.id, "status": None, "reset": True}
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)


# -- MCP tool calls -----------------------------------------------------------------------------


def _template(app: web.Application, method: str, path: str) -> str | None:
    """The path template of the route `method path` is routed to (as `call_of` finds it for a
    request), from the router's resources in the order aiohttp tries them."""
    for resource in app.router.resources():
        info = resource.get_info()
        pattern = info.get("pattern")
        found = pattern.fullmatch(path) if pattern is not None else info.get("path") == path
        if found and any(route.method in (method, "*") for route in resource):
            return resource.canonical
    return None


@dataclass(frozen=True, slots=True)
class ToolFault:
    """What a fired rule answers a tool call: the REST status and body (`status` None: the
    connection was dropped, nothing reaches the client)."""

    rule: FaultRule
    status: int | None
    body: Any


async def tool_fault(request: web.Request, rest: RestCall | None, user: str) -> ToolFault | None:
    """Apply the rules to an MCP tool call, matched as the REST request it stands for
    (`recorder.mcp_tools.rest_call`; the path template is the one that request is routed to).
    None: the tool runs (no rule fired, a delay alone was waited, or `end_session` ended the
    session and the tool then answers what its state says)."""
    book = request.app[FAULTS]
    if not book.rules or rest is None:
        return None
    template = _template(request.app, rest.method, rest.path)
    call = Call(rest.method, rest.path, template, rest.action, rest.session, user, rest.endpoint)
    rule = book.fire(call)
    if rule is None:
        return None
    request[FAULT_JOURNAL] = {"rule": rule.id}
    if rule.delay_ms:
        await asyncio.sleep(rule.delay_ms / 1000)
    if rule.reset:
        _drop(request, rule)
        return ToolFault(rule, None, None)
    if rule.status is not None:
        request[SOURCE] = FAULT_SOURCE
        status, body = await _status_body(request, rule, call)
        return ToolFault(rule, status, body)
    if rule.end_session is not None:
        request[SOURCE] = FAULT_SOURCE
        session = await _session(request, call)
        if session is not None:
            await _end(request, rule, session)
    return None


# -- admin routes -------------------------------------------------------------------------------


async def add_fault(request: web.Request) -> web.Response:
    rule = request.app[FAULTS].add(await read_json(request))
    return json_response({"success": True, **rule.as_json()}, 201)


async def list_faults(request: web.Request) -> web.Response:
    rules = [r.as_json() for r in request.app[FAULTS].rules.values()]
    return json_response({"success": True, "count": len(rules), "faults": rules})


async def remove_fault(request: web.Request) -> web.Response:
    rule = request.app[FAULTS].remove(request.match_info["rule_id"])
    return json_response({"success": True, "removed": rule.as_json()})


async def remove_faults(request: web.Request) -> web.Response:
    return json_response({"success": True, "removed": request.app[FAULTS].clear()})


def add_fault_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/__admin/faults", add_fault)
    r.add_get("/__admin/faults", list_faults)
    r.add_delete("/__admin/faults", remove_faults)
    r.add_delete("/__admin/faults/{rule_id}", remove_fault)
