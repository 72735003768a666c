"""A cassette as stable, line-oriented text, for git's `textconv` (readable diffs of re-recorded
cassettes) and for reading one in a terminal.

One block per exchange, in file order: sequence, method, path (and query) with the session id as
recorded, the session, user, action type and main argument, status, error, then the request and
the answer: JSON pretty-printed with sorted keys, other text as its lines, binary bodies as their
content type, size and sha256 (images with their pixel size, also inside JSON: a screenshot's
`bodyBase64`). Time fields inside bodies stay as recorded; headers and the exchange's own timing
are left out (they change at every recording and would hide the changes that matter). The same
cassette always gives the same text.

A damaged cassette gives every whole record and, where the damage is, a line saying so (`!!`).
Pillow is imported only when an image is met. Must not import `mock_server`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

from recorder.bodies import (
    codings_of,
    decoded_or_raw,
    header_value,
    is_text_type,
    json_or_none,
    map_base64_bodies,
)
from recorder.contract import main_argument
from recorder.errors import CassetteError
from recorder.export import iso_time
from recorder.mcp_audit import mcp_label
from recorder.mcp_tools import EVENT_STREAM, is_mcp_path, mcp_session_of
from recorder.reader import Cassette, Gap
from recorder.records import IndexEntry, Interaction, RecordedRequest, RecordedResponse

INDENT = "    "
_TEXT_CONTENT = frozenset({"type", "text", "annotations", "_meta"})  # MCP's TextContent
_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")


def _pixel_size(data: bytes) -> str | None:
    if not data.startswith(_IMAGE_SIGNATURES):
        return None
    from PIL import Image, UnidentifiedImageError  # only when an image is met

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return f"{width}x{height} px"


def describe_binary(data: bytes, content_type: str | None) -> str:
    """`image/png, 16482 bytes, 1440x900 px, sha256 …` (the pixel size only for images)."""
    parts = [content_type or "binary", f"{len(data)} bytes"]
    pixels = _pixel_size(data)
    if pixels is not None:
        parts.append(pixels)
    parts.append(f"sha256 {hashlib.sha256(data).hexdigest()}")
    return ", ".join(parts)


def _summarize_blob(where: str, data: bytes, content_type: str | None) -> str:
    return f"<{describe_binary(data, content_type)}>"


def body_lines(body: bytes, headers: tuple[tuple[str, str], ...]) -> list[str]:
    """A body as text lines: JSON pretty with sorted keys, text as is, binary summarized."""
    if not body:
        return ["(empty)"]
    content_type = header_value(headers, "content-type")
    decoded = decoded_or_raw(headers, body)
    lines = []
    codings = codings_of(headers)
    if codings and decoded is not body:
        lines.append(f"(stored {', '.join(codings)}-encoded, {len(body)} bytes; shown decoded)")
    if content_type is not None and content_type.split(";")[0].strip() == EVENT_STREAM:
        events = _event_lines(decoded)
        if events is not None:
            return lines + events
    pretty = _pretty_json(decoded)
    if pretty is not None:
        return lines + pretty
    if is_text_type(content_type):
        try:
            return lines + decoded.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            pass
    return [*lines, f"<{describe_binary(decoded, content_type)}>"]


def _event_lines(body: bytes) -> list[str] | None:
    """A `text/event-stream` answer (MCP's) event by event: its fields as they are, its `data`
    pretty-printed when it is JSON; None when it is not UTF-8 text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines: list[str] = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        if not event.strip():
            continue
        if lines:
            lines.append("")
        data = []
        for line in event.split("\n"):
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            else:
                lines.append(line)
        pretty = _pretty_json("\n".join(data).encode()) if data else None
        if pretty is not None:
            lines += ["data:", *(INDENT + line for line in pretty)]
        else:
            lines += [f"data: {line}" for line in data]
    return lines


def _expand_json_text(value: Any) -> Any:
    """MCP text content (`{"type": "text", "text": "<JSON>"}`, a tool's answer) with its JSON
    shown parsed, as `"text (JSON)"`, so that a changed field is a line of its own."""
    if isinstance(value, list):
        return [_expand_json_text(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _expand_json_text(v) for k, v in value.items()}
    text = value.get("text")
    if value.get("type") == "text" and isinstance(text, str) and value.keys() <= _TEXT_CONTENT:
        parsed = json_or_none(text.encode())
        if isinstance(parsed, dict | list):
            del out["text"]
            out["text (JSON)"] = parsed
    return out


def _pretty_json(body: bytes) -> list[str] | None:
    """JSON pretty-printed with sorted keys and blobs summarized; None when it is not JSON (or
    nests deeper than Python's recursion limit: then it is shown as text)."""
    try:
        data = json_or_none(body)
        if data is None and body.strip() != b"null":
            return None
        summarized = map_base64_bodies(_expand_json_text(data), _summarize_blob)
        return json.dumps(summarized, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    except RecursionError:
        return None


def _part(name: str, message: RecordedRequest | RecordedResponse) -> Iterator[str]:
    kind = header_value(message.headers, "content-type")
    yield f"  {name}" + (f" ({kind}):" if kind else ":")
    for line in body_lines(message.body, message.headers):
        yield INDENT + line


def exchange_lines(item: Interaction) -> Iterator[str]:
    """The block of one exchange."""
    req, resp = item.request, item.response
    yield f"#{item.seq} {req.method} {req.target}"
    mcp = is_mcp_path(req.path)
    mcp_session = mcp_session_of(req.headers, resp.headers) if mcp else None
    if mcp_session:
        yield f"  mcp session: {mcp_session}"
    if item.session_id:
        yield f"  session: {item.session_id}"
    if item.user:
        yield f"  user: {item.user}"
    label = mcp_label(req.body) if mcp else None
    if label:
        yield f"  action: {label}"
    elif item.action_type or item.session_id is None:
        argument = main_argument(req.path, req.query, req.body)
        action = " ".join(x for x in (item.action_type, argument) if x)
        if action:
            yield f"  action: {action}"
    yield f"  status: {resp.status}" + (f" {resp.reason}" if resp.reason else "")
    if item.error:
        yield f"  error: {item.error}"
    yield from _part("request", req)
    yield from _part("answer", resp)


def _damage_line(gap: Gap) -> str:
    where = (
        f"before record #{gap.before_seq}"
        if gap.after_seq is None
        else f"between records #{gap.after_seq} and #{gap.before_seq}"
    )
    return f"!! damaged: {gap.size} bytes at byte {gap.offset} {where} ({gap.reason})"


def _load(cassette: Cassette, entry: IndexEntry) -> Iterator[str]:
    try:
        item = cassette.load(entry)
    except CassetteError as err:
        yield f"#{entry.seq} {entry.method} {entry.path}"
        yield f"!! unreadable record: {err.message}"
        return
    yield from exchange_lines(item)


def cassette_lines(cassette: Cassette) -> Iterator[str]:
    """Every line of the text form of an open cassette (opened with `allow_damage`)."""
    h = cassette.header
    yield (
        f"capture-replay cassette, format {h.version}, upstream {h.upstream}, "
        f"created {iso_time(h.created_at)}, {len(cassette.entries)} exchanges"
    )
    gaps = sorted(cassette.gaps, key=lambda g: g.offset)
    for entry in cassette.entries:
        while gaps and gaps[0].offset < entry.offset:
            yield ""
            yield _damage_line(gaps.pop(0))
        yield ""
        yield from _load(cassette, entry)
    for gap in gaps:
        yield ""
        yield _damage_line(gap)
    torn = cassette.torn_tail
    if torn is not None:
        yield ""
        yield f"!! torn tail: {torn.size} bytes at byte {torn.offset} ({torn.reason})"
