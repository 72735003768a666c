"""Replay of recorded MCP sessions (`/mcp/v1`): `McpReplayer` answers a live MCP client from
the cassettes' MCP exchanges, with no browser and no MCP server running.

- `initialize` starts a replayed MCP session: the k-th live one plays the k-th recorded one
  (cycling), under a fresh, deterministic `Mcp-Session-Id` mapped to the recorded one.
- Within it, a request is matched on its method and canonical params; a `tools/call` on its tool
  name and canonical arguments, in recorded order (the n-th identical call gets the n-th
  recorded answer, then the last one again). JSON-RPC ids are mapped (an answer carries the live
  request's id); browser `sessionId`s are mapped as the REST replay maps session ids: a replayed
  `browser_session_create` hands out a fresh id, and that id in later arguments matches the
  recorded one. Answers keep their recorded form (`text/event-stream` or JSON).
- A `tools/call` nothing answers is a tool error (`isError: true`) naming the nearest recorded
  call and the argument fields that differ; notifications are accepted (202); `ping` and an
  unrecorded `tools/list` are answered from any recorded one or synthesised; the GET stream is
  405 (the transport lets a server offer none), DELETE ends the replayed session.

An exchange answered from the recording counts as served (`replay.usage`); the exchanges of a
replayed MCP session that answer nothing themselves (its notifications, GET stream and DELETE)
count as served once the session is replayed.

Tool results are the recorded ones: time fields (`expiresAt`, `billedCredits`) and refusals
(a recorded 429) are replayed as recorded, not recomputed from the clock.

Never imports the app, routes, admin or http modules.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recorder.bodies import Headers, header_value
from recorder.cassette import Cassette
from recorder.comparison import diff_values
from recorder.mcp_tools import (
    CREATE,
    EVENT_STREAM,
    SESSION_HEADER,
    McpCall,
    canonical_arguments,
    is_mcp_path,
    mcp_calls,
    mcp_session_of,
    messages_in,
)
from recorder.records import IndexEntry

# A fixed namespace: fresh ids are the same in every run of a cassette.
ID_NAMESPACE = uuid.UUID("0d7a5f4e-9c3b-4e61-8f0a-6b2d1c9e7a34")
JSON_TYPE = "application/json"
Reply = tuple[int, list[tuple[str, str]], bytes]
Served = Callable[[Cassette, IndexEntry], None]


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One recorded JSON-RPC request of an MCP session, with its answer."""

    label: str
    call: McpCall
    content_type: str
    messages: list[dict[str, Any]]
    exchange: tuple[Cassette, IndexEntry] | None = None  # where it was recorded

    @property
    def key(self) -> str:
        return match_key(self.call.method, self.call.params)


@dataclass(slots=True)
class RecordedMcpSession:
    session_id: str
    initialize: RecordedCall | None = None
    calls: list[RecordedCall] = field(default_factory=list)
    # its exchanges that answer no request (notifications, the GET stream, DELETE)
    others: list[tuple[Cassette, IndexEntry]] = field(default_factory=list)


@dataclass(slots=True)
class McpReplay:
    """A live MCP session replaying a recorded one."""

    fresh_id: str
    recording: RecordedMcpSession
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ids: dict[str, str] = field(default_factory=dict)  # browser session ids: recorded -> fresh

    def recorded_id(self, fresh: str) -> str:
        return next((r for r, f in self.ids.items() if f == fresh), fresh)


def match_key(method: str, params: dict[str, Any]) -> str:
    if method == "tools/call":
        return f"tools/call {params.get('name')} {canonical_arguments(params.get('arguments'))}"
    return f"{method} {canonical_arguments({k: v for k, v in params.items() if k != '_meta'})}"


def _rpc_error(code: int, message: str, rpc_id: Any = None) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}}
    ).encode()


class McpReplayer:
    """The recorded MCP sessions of the loaded cassettes and the live sessions replaying them."""

    def __init__(
        self, recordings: list[RecordedMcpSession], names: str, served: Served | None = None
    ) -> None:
        self.recordings = recordings
        self.names = names
        self.served = served  # told of each recorded exchange an answer came from
        self.replays: dict[str, McpReplay] = {}
        self.started = 0
        self.misses: list[dict[str, Any]] = []  # the tool calls nothing answered
        self.source = "replay"  # where the last answer came from, for the journal

    @classmethod
    def of(cls, cassettes: list[Cassette], served: Served | None = None) -> McpReplayer | None:
        """The MCP sessions recorded in `cassettes`; None when there is none."""
        by_session: dict[str, RecordedMcpSession] = {}
        for cassette in cassettes:
            for entry in cassette.entries:
                if not is_mcp_path(entry.path):
                    continue
                item = cassette.load(entry)
                sid = mcp_session_of(item.request.headers, item.response.headers)
                if sid is None:
                    continue
                recording = by_session.setdefault(sid, RecordedMcpSession(sid))
                label = f"{cassette.path.name}#{entry.seq}"
                content_type = header_value(item.response.headers, "content-type") or JSON_TYPE
                messages = messages_in(item.response.body, content_type)
                calls = mcp_calls(item.request.body, item.response.headers, item.response.body)
                if entry.method != "POST" or not calls:
                    recording.others.append((cassette, entry))
                for call in calls if entry.method == "POST" else ():
                    recorded = RecordedCall(label, call, content_type, messages, (cassette, entry))
                    if call.method == "initialize":
                        recording.initialize = recorded
                    else:
                        recording.calls.append(recorded)
        found = [r for r in by_session.values() if r.initialize is not None]
        names = ", ".join(c.path.name for c in cassettes)
        return cls(found, names, served) if found else None

    def reset(self) -> None:
        self.replays.clear()
        self.started = 0
        self.misses.clear()

    # -- the transport ------------------------------------------------------------------------

    def answer(self, method: str, headers: Headers, body: bytes) -> Reply:
        """The replayed answer to one HTTP request on `/mcp/v1`."""
        self.source = "replay (mcp transport)"
        session_id = header_value(headers, SESSION_HEADER)
        if method == "GET":
            message = "this replayed MCP server offers no server-sent event stream"
            return (
                405,
                [("Allow", "POST, DELETE"), ("Content-Type", JSON_TYPE)],
                _rpc_error(-32000, message),
            )
        replay = self.replays.get(session_id or "")
        if method == "DELETE":
            if replay is None:
                return self._unknown(session_id)
            del self.replays[replay.fresh_id]
            return 200, [], b""
        messages = messages_in(body)
        if len(messages) != 1:
            return (
                400,
                [("Content-Type", JSON_TYPE)],
                _rpc_error(-32600, "Invalid request: one JSON-RPC message per POST is replayed"),
            )
        message = messages[0]
        if "method" not in message or "id" not in message:
            return 202, [], b""  # a notification, or a client's answer to the server
        if message["method"] == "initialize":
            return self._initialize(message)
        if replay is None:
            return self._unknown(session_id, message.get("id"))
        return self._request(replay, message)

    def _unknown(self, session_id: str | None, rpc_id: Any = None) -> Reply:
        if session_id is None:
            return (
                400,
                [("Content-Type", JSON_TYPE)],
                _rpc_error(-32600, f"Bad Request: Missing {SESSION_HEADER} header", rpc_id),
            )
        return 404, [("Content-Type", JSON_TYPE)], _rpc_error(-32600, "Session not found", rpc_id)

    def _initialize(self, message: dict[str, Any]) -> Reply:
        recording = self.recordings[self.started % len(self.recordings)]
        fresh = uuid.uuid5(ID_NAMESPACE, f"{recording.session_id}/{self.started}").hex
        self.started += 1
        self.replays[fresh] = McpReplay(fresh, recording)
        assert recording.initialize is not None
        if self.served is not None:
            for cassette, entry in recording.others:
                self.served(cassette, entry)
        status, headers, body = self._render(recording.initialize, message["id"], {})
        return status, [*headers, (SESSION_HEADER, fresh)], body

    def _request(self, replay: McpReplay, message: dict[str, Any]) -> Reply:
        method = message["method"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        asked = dict(params)
        if method == "tools/call" and isinstance(params.get("arguments"), dict):
            args = dict(params["arguments"])
            if isinstance(args.get("sessionId"), str):
                args["sessionId"] = replay.recorded_id(args["sessionId"])
            asked["arguments"] = args
        key = match_key(method, asked)
        same = [c for c in replay.recording.calls if c.key == key]
        if same:
            n = replay.counts[key]
            replay.counts[key] += 1
            found = same[min(n, len(same) - 1)]
            if found.call.tool == CREATE and not found.call.is_error:
                created = (found.call.structured() or {}).get("sessionId")
                if isinstance(created, str) and created not in replay.ids:
                    fresh = uuid.uuid5(ID_NAMESPACE, f"{replay.fresh_id}/{created}")
                    replay.ids[created] = f"sess_{fresh}"
            return self._render(found, message["id"], replay.ids)
        if method == "tools/call":
            return self._miss(replay, message["id"], asked)
        if method in ("tools/list", "ping"):
            elsewhere = [c for r in self.recordings for c in r.calls if c.call.method == method]
            if elsewhere:
                return self._render(elsewhere[0], message["id"], replay.ids)
            if method == "ping":
                return self._json({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        text = f"{method} was not recorded in {self.names} for this MCP session"
        return 200, [("Content-Type", JSON_TYPE)], _rpc_error(-32601, text, message["id"])

    def _miss(self, replay: McpReplay, rpc_id: Any, asked: dict[str, Any]) -> Reply:
        tool = asked.get("name")
        arguments = asked.get("arguments") or {}
        pool = [c for c in replay.recording.calls if c.call.tool is not None] or [
            c for r in self.recordings for c in r.calls if c.call.tool is not None
        ]
        ranked = sorted(
            pool,
            key=lambda c: (
                c.call.tool != tool,
                len(diff_values(c.call.arguments, arguments, "arguments")),
            ),
        )
        error = f"tools/call {tool} {canonical_arguments(arguments)} was not recorded in "
        error += f"{self.names} for this MCP session"
        if ranked:
            near = ranked[0]
            diffs = diff_values(near.call.arguments, arguments, "arguments")
            if near.call.tool != tool:
                diffs.insert(0, f"name: {json.dumps(near.call.tool)} -> {json.dumps(tool)}")
            error += f"; closest: {near.label} {near.call.tool} ({', '.join(diffs[:3])})"
        else:
            error += "; no tool call was recorded"
        body = {"status": 502, "success": False, "error": error}
        self.misses.append({"mcpSession": replay.fresh_id, **body})
        self.source = "miss"
        return self.tool_error(rpc_id, body)

    def tool_error(self, rpc_id: Any, body: dict[str, Any]) -> Reply:
        """A tool error (`isError: true`) whose one text block is `body`'s JSON."""
        result = {"content": [{"type": "text", "text": json.dumps(body)}], "isError": True}
        return self._json({"jsonrpc": "2.0", "id": rpc_id, "result": result})

    @staticmethod
    def tool_call_in(body: bytes) -> tuple[Any, str, dict[str, Any]] | None:
        """(JSON-RPC id, tool, arguments) when `body` is one `tools/call` request."""
        messages = messages_in(body)
        if len(messages) != 1 or messages[0].get("method") != "tools/call":
            return None
        message = messages[0]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        name, arguments = params.get("name"), params.get("arguments")
        if "id" not in message or not isinstance(name, str):
            return None
        return message["id"], name, arguments if isinstance(arguments, dict) else {}

    # -- answers ------------------------------------------------------------------------------

    def _json(self, message: dict[str, Any]) -> Reply:
        return 200, [("Content-Type", JSON_TYPE)], json.dumps(message).encode()

    def _render(self, recorded: RecordedCall, rpc_id: Any, ids: dict[str, str]) -> Reply:
        """The recorded answer in its recorded form, its JSON-RPC id and session ids mapped."""
        self.source = f"replay {recorded.label}"
        if self.served is not None and recorded.exchange is not None:
            self.served(*recorded.exchange)
        texts = []
        for message in recorded.messages:
            if "id" in message and message["id"] == recorded.call.id:
                message = {**message, "id": rpc_id}
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            for old, new in ids.items():
                text = text.replace(old, new)
            texts.append(text)
        if recorded.content_type.split(";")[0].strip() == EVENT_STREAM:
            body = "".join(f"event: message\r\ndata: {t}\r\n\r\n" for t in texts)
            headers = [("Content-Type", EVENT_STREAM), ("Cache-Control", "no-cache")]
            return 200, headers, body.encode()
        return 200, [("Content-Type", JSON_TYPE)], (texts[0] if texts else "").encode()
