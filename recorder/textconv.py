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
from recorder.reader import Cassette, Gap
from recorder.records import IndexEntry, Interaction, RecordedRequest, RecordedResponse

INDENT = "    "
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
    pretty = _pretty_json(decoded)
    if pretty is not None:
        return lines + pretty
    if is_text_type(content_type):
        try:
            return lines + decoded.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            pass
    return [*lines, f"<{describe_binary(decoded, content_type)}>"]


def _pretty_json(body: bytes) -> list[str] | None:
    """JSON pretty-printed with sorted keys and blobs summarized; None when it is not JSON (or
    nests deeper than Python's recursion limit: then it is shown as text)."""
    try:
        data = json_or_none(body)
        if data is None and body.strip() != b"null":
            return None
        summarized = map_base64_bodies(data, _summarize_blob)
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
    if item.session_id:
        yield f"  session: {item.session_id}"
    if item.user:
        yield f"  user: {item.user}"
    if item.action_type or item.session_id is None:
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
