"""Checks of exchanges before `import` makes them a cassette: sessions in order (none used before
the exchange that creates it, none created twice, none answered with success without a create)
and, on request, answers the contract allows for their route (`recorder.answers`).

Plain functions over `Interaction`s: imports no aiohttp, click or Pillow, and never `mock_server`.
"""

from __future__ import annotations

import json

from recorder.answers import answer_problem
from recorder.bodies import BodyDecodeError, decode
from recorder.contract import is_create, session_id_from_path
from recorder.mcp_tools import is_mcp_path, mcp_calls
from recorder.records import Interaction


def session_order_problem(items: list[Interaction]) -> tuple[int, str, str] | None:
    """(position, field, problem) of the first exchange that uses a session before the exchange
    that creates it, creates one twice, or is answered with success for a session the file never
    creates; None when the sessions are in order."""
    creates: dict[str, int] = {}
    for pos, item in enumerate(items):
        req = item.request
        if is_create(req.method, req.path) and item.response.status == 201 and item.session_id:
            if item.session_id in creates:
                first = items[creates[item.session_id]].seq
                return pos, "response.body", f"creates {item.session_id} again (#{first} did)"
            creates[item.session_id] = pos
    for pos, item in enumerate(items):
        sid = session_id_from_path(item.request.path)
        if sid is None:
            continue
        created = creates.get(sid)
        if created is None:
            if item.response.status < 400:
                return pos, "request.path", f"{sid} is never created in this file"
        elif created > pos:
            return pos, "request.path", f"uses {sid} before its create (#{items[created].seq})"
    return None


def contract_problem(item: Interaction) -> tuple[str, str] | None:
    """(field, problem) when the answer is not one the contract allows for its route."""
    req, resp = item.request, item.response
    if not resp.body or item.error is not None:
        return None  # the recorder's own failure, or a body withheld by redaction
    try:
        answer = json.loads(decode(resp.headers, resp.body))
    except (ValueError, RecursionError, BodyDecodeError):
        answer = None
    try:
        request = json.loads(req.body) if req.body else None
    except (ValueError, RecursionError):
        request = None
    problem = answer_problem(req.method, req.path, request, resp.status, answer)
    if is_mcp_path(req.path) and req.method == "POST" and resp.status == 200:
        problem = _mcp_problem(item)
    if problem is None:
        return None
    field, _, what = problem.partition(": ")
    where = f"response.body.{field}" if field else "response.body"
    return where, f"{what}; not what the contract allows for this route"


def _mcp_problem(item: Interaction) -> str | None:
    """`: problem` when an MCP answer lacks the JSON-RPC answer to a request it was sent (an
    edit that broke an event's `data:` JSON): replay would answer nothing, the client wait."""
    req, resp = item.request, item.response
    try:
        body = decode(resp.headers, resp.body)
    except BodyDecodeError:
        return None  # refused as malformed already
    for call in mcp_calls(req.body, resp.headers, body):
        if call.result is None and call.error is None:
            rpc_id = json.dumps(call.id)
            return f": no JSON-RPC answer to request id {rpc_id} (replay would answer nothing)"
    return None


def check_interactions(
    items: list[Interaction], *, validate: bool
) -> tuple[int, str, str, bool] | None:
    """(position, field, problem, whether the contract check found it) of the first exchange
    that fails the checks."""
    order = session_order_problem(items)
    if validate:
        for pos, item in enumerate(items[: None if order is None else order[0]]):
            problem = contract_problem(item)
            if problem is not None:
                return pos, *problem, True
    return None if order is None else (*order, False)
