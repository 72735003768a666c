"""The eight MCP tools, each a thin layer over what the REST routes run.

`browser_session_*` call the same session registry and live runner as `/v1/sessions...`
(`mock_server.routes`), so the 5-session limit, TTL, billing on the server's clock and the
action counts are the very same; `capture_*` check their arguments with the one-shot parsers and
run `run_capture` in the same capture slots as the signed URLs (`mock_server.oneshot`). The
arguments are first checked against the tool's input schema (`recorder.mcp_tools`), then the
server's fault rules are applied as to the REST request the call stands for
(`mock_server.faults.tool_fault`). Any refusal (a bad argument, a fired fault rule, a REST error
such as the 429 limit) is a `ToolError` carrying the REST answer's
JSON (`status` and the contract's `error` text), which the server answers as a tool error
(`isError: true`), never as a protocol error.

Results: images (a screenshot action, an attached `screenshot: true`, `capture_screenshot`) as
MCP image content, base64 as on the wire; a PDF as an embedded blob resource; everything else
as one text block of JSON (also given as structured content). A call the REST route would warn
about ends with one text block per finding, and under `serve --strict` is refused as the route
refuses it (`mock_server.mcp.warnings`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jsonschema
import mcp_types as types
from aiohttp import web

from mock_server.actions.dispatch import ActionType
from mock_server.config import MAX_TTL_SECONDS
from mock_server.errors import CaptureError
from mock_server.faults import ToolFault, tool_fault
from mock_server.field_warnings import screen, screen_action, screen_create
from mock_server.live import inactive_error
from mock_server.mcp.warnings import warning_blocks
from mock_server.oneshot import ONESHOT_SLOTS, refuse_self, run_capture
from mock_server.oneshot.options import PARSERS, Query
from mock_server.sessions import Session, parse_create_options
from mock_server.state import BROWSER, CLOCK, CONFIG, LIVE, REGISTRY
from recorder import mcp_tools
from recorder.contract import credits_between
from recorder.findings import Finding, tool_findings
from recorder.mcp_tools import ACT, CAPTURE_ENDPOINTS, CLOSE, CREATE, GET

SCHEMAS = mcp_tools.input_schemas([t.value for t in ActionType], MAX_TTL_SECONDS)
TOOLS = [
    types.Tool(name=name, description=mcp_tools.DESCRIPTIONS[name], input_schema=SCHEMAS[name])
    for name in mcp_tools.TOOL_NAMES
]
_VALIDATORS = {name: jsonschema.Draft202012Validator(s) for name, s in SCHEMAS.items()}


class ToolError(Exception):
    """A refused tool call: `body` is the REST answer's JSON (`status`, `success`, `error`)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.body = body
        # The call's findings, shown after the error as after a result (a REST error answer
        # carries its warning headers too).
        self.findings: list[Finding] = []

    @classmethod
    def of(cls, err: CaptureError) -> ToolError:
        return cls({"status": err.status, **err.body()})

    @classmethod
    def of_fault(cls, fault: ToolFault) -> ToolError:
        """A fired fault rule's REST answer (a dropped connection's error reaches no one)."""
        if fault.status is None:
            return cls({"status": None, "success": False, "error": f"reset by {fault.rule.id}"})
        body = fault.body if isinstance(fault.body, dict) else {"body": fault.body}
        return cls({"status": fault.status, **body})

    @classmethod
    def bad_argument(cls, tool: str, message: str) -> ToolError:
        return cls({"status": 400, "success": False, "error": f"{tool}: {message}"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, through which HTTP request (for the app's resources and the self-URL check)."""

    user: str
    request: web.Request


def check_arguments(tool: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
    if tool not in _VALIDATORS:
        known = ", ".join(mcp_tools.TOOL_NAMES)
        raise ToolError.bad_argument(tool, f"unknown tool; the tools are {known}")
    args = arguments or {}
    error = next(iter(sorted(_VALIDATORS[tool].iter_errors(args), key=str)), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        raise ToolError.bad_argument(tool, f"invalid argument {where}: {error.message}")
    return args


async def call_tool(caller: Caller, tool: str, arguments: dict[str, Any] | None) -> list[Any]:
    """Run one tool; its MCP content blocks. Raises ToolError."""
    args = check_arguments(tool, arguments)
    fault = await tool_fault(
        caller.request, mcp_tools.rest_call(tool, args, caller.user), caller.user
    )
    if fault is not None:
        raise ToolError.of_fault(fault)
    findings = tool_findings(tool, args, caller.user)
    try:
        if tool in CAPTURE_ENDPOINTS:
            screen(caller.request, findings)
            content = await _capture(caller, CAPTURE_ENDPOINTS[tool], args)
        else:
            content = await _session_tool(caller, tool, args)
    except CaptureError as err:
        error = ToolError.of(err)
        error.findings = findings
        raise error from err
    return [*content, *warning_blocks(findings)]


async def _session_tool(caller: Caller, tool: str, args: dict[str, Any]) -> list[Any]:
    app = caller.request.app
    registry = app[REGISTRY]
    await registry.sweep()
    if tool == CREATE:
        screen_create(caller.request, mcp_tools.rest_payload(tool, args)[1])
        options = parse_create_options(args, app[CONFIG].default_ttl)
        session = await registry.create(caller.user, options)
        created = session.created_json()
        result = {"sessionId": created["id"], "expiresAt": created["expiresAt"]}
        if "connectUrl" in created:
            result["connectUrl"] = created["connectUrl"]
        return [_json(result)]
    session = registry.get(args["sessionId"], caller.user)
    if tool == CLOSE:
        await registry.close(session)
    if tool in (GET, CLOSE):
        return [_json(_state(session, app[CLOCK].now()))]
    assert tool == ACT
    if not session.active:
        raise inactive_error(session)
    raw = mcp_tools.rest_payload(tool, args)[1]
    screen_action(caller.request, session, session.expires_in(app[CLOCK].now()), raw)
    result = await app[LIVE].act(session, raw)
    images: list[Any] = []
    return [_json(_lift_images(result, images)), *images]


def _state(session: Session, now: float) -> dict[str, Any]:
    """A session's REST snapshot, its id named as the tools name it, with what Capture's MCP
    page says `browser_session_get` tells: the seconds left and the credits billed so far (an
    active session's by the billing rule up to now; a closed one's `billedCredits`)."""
    snapshot = session.snapshot()
    so_far = (
        credits_between(session.started_at, now)
        if session.active
        else (session.billed_credits or 0)
    )
    return {
        "sessionId": snapshot.pop("id"),
        **snapshot,
        "expiresInSeconds": session.expires_in(now),
        "creditsSoFar": so_far,
    }


def _lift_images(value: Any, images: list[Any]) -> Any:
    """`value` with every `{contentType: image/…, bodyBase64}` replaced by a reference to an
    image content block appended to `images`."""
    if isinstance(value, list):
        return [_lift_images(v, images) for v in value]
    if not isinstance(value, dict):
        return value
    content_type = value.get("contentType")
    if (
        isinstance(content_type, str)
        and content_type.startswith("image/")
        and isinstance(value.get("bodyBase64"), str)
    ):
        images.append(types.ImageContent(data=value["bodyBase64"], mime_type=content_type))
        rest = {k: v for k, v in value.items() if k != "bodyBase64"}
        return {**rest, "image": f"content[{len(images)}]"}
    return {k: _lift_images(v, images) for k, v in value.items()}


async def _capture(caller: Caller, endpoint: str, args: dict[str, Any]) -> list[Any]:
    app = caller.request.app
    browser = app[BROWSER]
    query = urlencode(mcp_tools.query_of(args))
    options = PARSERS[endpoint](Query(query), allow_file=browser.allow_file_urls)
    refuse_self(getattr(options, "page", options).url, caller.request)
    content_type, body = await run_capture(browser, app[ONESHOT_SLOTS], endpoint, options)
    if isinstance(body, dict):
        return [_json(body)]
    data = base64.b64encode(body).decode()
    if content_type.startswith("image/"):
        return [types.ImageContent(data=data, mime_type=content_type)]
    uri = f"capture://{endpoint}/{args['url']}"
    resource = types.BlobResourceContents(uri=uri, mime_type=content_type, blob=data)
    return [types.EmbeddedResource(resource=resource)]


def _json(value: dict[str, Any]) -> types.TextContent:
    return types.TextContent(text=json.dumps(value, ensure_ascii=False))
