"""Capture's MCP server on the wire: the endpoint, the eight tools and their input schemas, and
how to read the JSON-RPC messages of an exchange (a request body, a JSON or `text/event-stream`
answer).

Capture publishes the tool names (reference section 7) but not their input schemas; the ones
here are derived from the REST contract's fields, one tool per REST call (`rest_call` says which,
for fault rules too): the names come from `recorder.fields` (the one table of request fields),
this module only types them, and every choice is written in the README ("MCP server"). The
emulator serves them (`mock_server.mcp`), replay matches on them (`mock_server.replay.mcp`), and
`inspect`, `audit` and `report` read recorded MCP exchanges through `mcp_calls`, without
importing `mock_server`. Plain functions over strings and bytes: imports no aiohttp, click or
Pillow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from recorder import fields
from recorder.bodies import Headers, header_value, json_or_none
from recorder.contract import SESSIONS_PATH, session_path

MCP_PATH = "/mcp/v1"
SESSION_HEADER = "Mcp-Session-Id"
EVENT_STREAM = "text/event-stream"

CREATE = "browser_session_create"
ACT = "browser_session_act"
GET = "browser_session_get"
CLOSE = "browser_session_close"
SCREENSHOT = "capture_screenshot"
PDF = "capture_pdf"
CONTENT = "capture_content"
METADATA = "capture_metadata"
SESSION_TOOLS: tuple[str, ...] = (CREATE, ACT, GET, CLOSE)
# The one-shot endpoint each capture tool runs (`recorder.contract.ONESHOT_ENDPOINTS`).
CAPTURE_ENDPOINTS: dict[str, str] = {
    SCREENSHOT: "image",
    PDF: "pdf",
    CONTENT: "content",
    METADATA: "metadata",
}
TOOL_NAMES: tuple[str, ...] = (*SESSION_TOOLS, *CAPTURE_ENDPOINTS)

DESCRIPTIONS = {
    CREATE: "Start a browser session (billed per started minute until closed or expired). "
    "Returns sessionId and expiresAt, and connectUrl when cdp is true.",
    ACT: "Run one action in a browser session: {sessionId, type, payload} as the REST "
    "POST /v1/sessions/{id}/actions body. Screenshots come back as PNG image content.",
    GET: "A browser session's status, expiry, action counts and credits billed so far.",
    CLOSE: "Close a browser session; returns its final state and billed credits.",
    SCREENSHOT: "Screenshot a URL (the one-shot image endpoint); returns the image.",
    PDF: "Render a URL as PDF (the one-shot pdf endpoint); returns an embedded PDF resource.",
    CONTENT: "A URL's HTML, text and Markdown (the one-shot content endpoint).",
    METADATA: "A URL's metadata: title, description, image... (the one-shot metadata endpoint).",
}

_STRING: dict[str, Any] = {"type": "string"}
_INTEGER: dict[str, Any] = {"type": "integer"}
_NUMBER: dict[str, Any] = {"type": "number"}
_BOOLEAN: dict[str, Any] = {"type": "boolean"}
_SESSION_ID: dict[str, Any] = {"type": "string", "minLength": 1, "description": "sessionId"}

# The JSON type of each one-shot query option, as the REST parsers read it (a name not here is a
# string); the parsers still check ranges and combinations and answer their own 400 text. Which
# options each endpoint has is `recorder.fields.ONESHOT`'s: this table only types them.
_LENGTH: dict[str, Any] = {"type": ["string", "number"], "description": "8.5in, 210mm, 800px"}
_OPTION_TYPES: dict[str, dict[str, Any]] = {
    "url": {"type": "string", "minLength": 1, "description": "page to capture (https:// added)"},
    "userAgent": {"type": "string", "description": "base64url of the user agent"},
    "httpAuth": {"type": "string", "description": "base64url of username:password"},
    "type": {"type": "string", "enum": ["png", "jpeg", "jpg", "webp"]},
    "timestamp": {"type": ["string", "number"]},
    **dict.fromkeys("vw vh top left width height resizeWidth resizeHeight".split(), _INTEGER),
    **dict.fromkeys("scaleFactor delay scale".split(), _NUMBER),
    **dict.fromkeys(
        (
            "darkMode blockAds blockCookieBanners bypassBotDetection stealth fresh s3Redirect "
            "skipUpload full transparent hideScrollbars bestFormat landscape printBackground"
        ).split(),
        _BOOLEAN,
    ),
}
# The pdf endpoint reads its sizes as CSS lengths.
_PDF_TYPES: dict[str, dict[str, Any]] = dict.fromkeys(
    "width height marginTop marginRight marginBottom marginLeft".split(), _LENGTH
)
_CREATE_TYPES: dict[str, dict[str, Any]] = dict.fromkeys(fields.CREATE.accepted, _BOOLEAN)


def _tool_options(endpoint: str) -> dict[str, dict[str, Any]]:
    """A capture tool's arguments: the names the endpoint's field table accepts (documented, and
    chosen other than aliases: a tool takes one name per option), typed."""
    table = fields.ONESHOT[endpoint]
    aliases = {alias for name in table.accepted for alias in table.names(name)[1:]}
    types = {**_OPTION_TYPES, **(_PDF_TYPES if endpoint == "pdf" else {})}
    return {n: types.get(n, _STRING) for n in table.accepted if n not in aliases}


def _object(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


def input_schemas(action_types: Iterable[str], max_ttl_seconds: int) -> dict[str, dict[str, Any]]:
    """Each tool's JSON Schema. The action types and the TTL cap are the emulator's (their one
    owner is `mock_server`), handed in so that the schemas never disagree with the REST routes."""
    ttl = {"type": "integer", "minimum": 1, "maximum": max_ttl_seconds}
    create = _object({**_CREATE_TYPES, "maxTtlSeconds": ttl})
    act_types = {
        "type": {"type": "string", "enum": list(action_types)},
        "payload": {"type": "object", "description": "the action's payload (see README)"},
    }
    act = _object(
        {"sessionId": _SESSION_ID, **{n: act_types[n] for n in fields.ACTION_REQUEST.accepted}},
        ["sessionId", "type"],
    )
    schemas = {
        CREATE: create,
        ACT: act,
        GET: _object({"sessionId": _SESSION_ID}, ["sessionId"]),
        CLOSE: _object({"sessionId": _SESSION_ID}, ["sessionId"]),
    }
    for tool, endpoint in CAPTURE_ENDPOINTS.items():
        schemas[tool] = _object(_tool_options(endpoint), ["url"])
    return schemas


def query_of(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """A capture tool's arguments as one-shot query pairs (booleans as `true`/`false`)."""
    pairs = []
    for name, value in arguments.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        else:
            text = str(value)
        pairs.append((name, text))
    return pairs


# -- the REST request a tool call stands for -----------------------------------------------------

# The hash segment of a capture tool's one-shot path: a tool call is not signed (the Bearer token
# authenticates it), so its path is `/{userId}/mcp/{endpoint}`.
UNSIGNED_HASH = "mcp"


@dataclass(frozen=True, slots=True)
class RestCall:
    """The REST request a tool call stands for: what fault rules match a tool call on."""

    method: str
    path: str
    action: str | None = None
    session: str | None = None
    endpoint: str | None = None


def rest_call(tool: str, arguments: dict[str, Any], user: str) -> RestCall | None:
    """The REST request `tool` runs with these (schema-checked) arguments; None for an unknown
    tool. Session ids and the user are quoted into the path as a client would."""
    if tool in CAPTURE_ENDPOINTS:
        endpoint = CAPTURE_ENDPOINTS[tool]
        path = f"/{quote(user, safe='')}/{UNSIGNED_HASH}/{endpoint}"
        return RestCall("GET", path, endpoint=endpoint)
    if tool == CREATE:
        return RestCall("POST", SESSIONS_PATH)
    if tool not in SESSION_TOOLS:
        return None
    sid = str(arguments.get("sessionId", ""))
    path = session_path(quote(sid, safe=""), actions=tool == ACT)
    if tool == ACT:
        action = arguments.get("type")
        return RestCall("POST", path, action if isinstance(action, str) else None, sid)
    return RestCall("GET" if tool == GET else "DELETE", path, session=sid)


def rest_payload(tool: str, arguments: dict[str, Any]) -> tuple[str, bytes]:
    """The query and body of the REST request `tool` runs (`rest_call` names its method and
    path): a capture tool's options as the one-shot query; the create options, or an act's
    `{type, payload}`, as the JSON body."""
    if tool in CAPTURE_ENDPOINTS:
        return urlencode(query_of(arguments)), b""
    if tool == CREATE:
        return "", json.dumps(arguments).encode()
    if tool == ACT:
        body = {"type": arguments.get("type"), "payload": arguments.get("payload") or {}}
        return "", json.dumps(body).encode()
    return "", b""


# -- reading recorded exchanges -------------------------------------------------------------------


def is_mcp_path(path: str) -> bool:
    return path.rstrip("/") == MCP_PATH


def canonical_arguments(arguments: Any) -> str:
    """Arguments compared as replay compares bodies: key order and whitespace do not matter."""
    return json.dumps(arguments or {}, sort_keys=True, separators=(",", ":"))


def messages_in(body: bytes, content_type: str | None = None) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a body: a JSON message or batch, or the `data:` of each
    server-sent event of a `text/event-stream` answer (events without JSON skipped)."""
    if content_type is not None and content_type.split(";")[0].strip() == EVENT_STREAM:
        found: list[dict[str, Any]] = []
        for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
            data = b"\n".join(
                line[5:].removeprefix(b" ")
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            )
            found.extend(_as_messages(json_or_none(data) if data else None))
        return found
    return _as_messages(json_or_none(body))


def _as_messages(parsed: Any) -> list[dict[str, Any]]:
    items = parsed if isinstance(parsed, list) else [parsed]
    return [m for m in items if isinstance(m, dict) and m.get("jsonrpc") == "2.0"]


@dataclass(frozen=True, slots=True)
class McpCall:
    """One JSON-RPC request of an exchange with its answer (None: not in this exchange)."""

    method: str
    id: Any
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    @property
    def tool(self) -> str | None:
        name = self.params.get("name") if self.method == "tools/call" else None
        return name if isinstance(name, str) else None

    @property
    def arguments(self) -> dict[str, Any]:
        args = self.params.get("arguments")
        return args if isinstance(args, dict) else {}

    @property
    def is_error(self) -> bool:
        return self.error is not None or bool((self.result or {}).get("isError"))

    def structured(self) -> dict[str, Any] | None:
        """The JSON a tool answered: its structured content, else its first text block's JSON."""
        result = self.result or {}
        if isinstance(result.get("structuredContent"), dict):
            return result["structuredContent"]
        for block in result.get("content") or ():
            if isinstance(block, dict) and block.get("type") == "text":
                found = json_or_none(str(block.get("text", "")).encode())
                if isinstance(found, dict):
                    return found
        return None


def mcp_calls(body: bytes, response_headers: Headers, response_body: bytes) -> list[McpCall]:
    """The JSON-RPC requests of a recorded MCP exchange, each with its answer."""
    answers = {
        json.dumps(m.get("id")): m
        for m in messages_in(response_body, header_value(response_headers, "content-type"))
        if "id" in m and ("result" in m or "error" in m)
    }
    calls = []
    for message in messages_in(body):
        method = message.get("method")
        if not isinstance(method, str) or "id" not in message:
            continue  # a notification or an answer to the server
        answer = answers.get(json.dumps(message["id"]), {})
        params = message.get("params")
        calls.append(
            McpCall(
                method=method,
                id=message["id"],
                params=params if isinstance(params, dict) else {},
                result=answer.get("result") if isinstance(answer.get("result"), dict) else None,
                error=answer.get("error") if isinstance(answer.get("error"), dict) else None,
            )
        )
    return calls


def mcp_session_of(request_headers: Headers, response_headers: Headers) -> str | None:
    """The `Mcp-Session-Id` of an exchange: sent by the client, or handed out by `initialize`."""
    return header_value(request_headers, SESSION_HEADER) or header_value(
        response_headers, SESSION_HEADER
    )
