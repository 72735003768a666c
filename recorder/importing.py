"""`import`: a cassette from the JSON document `export --format json` writes, or from one written
by hand in the same shape with only the required fields.

Required: `interactions`, a list; in each, `request.method`, `request.path` and
`response.status`. Everything else has a default (`IMPORT_DEFAULTS` in the README):

- `seq`: one more than the largest `seq` in the file, in file order (so an exchange inserted
  without one never collides); `startedAt`: the previous exchange's start plus its duration,
  the first at the cassette's `createdAt` (default 2026-01-01T00:00:00.000Z); `durationMs`: 0;
- `sessionId`, `actionType`, `user`: derived as the recorder derives them (from the path or the
  create answer, the action body, the redacted `Authorization` header); given, they must agree;
- secrets never reach disk: every exchange goes through the recorder's redaction
  (`recorder.redaction`: a real credential in `Authorization`, a signed URL's hash, a password
  typed into a password field...); an `Authorization` already in its stored form is kept;
- `request.query`: ""; `response.reason`: the status's standard phrase; `error`: null;
- a body is `{"text": ..., "encoding": "utf-8"|"base64"}` or `{"json": <any JSON>}` (written
  compact); none is an empty body; `size` is informative (recomputed);
- headers: as given; when none are given, `Content-Type: application/json` for a JSON body;
- `cassettes[0].createdAt` and `.upstream` become the header (default upstream
  https://api.capture.page); its `path`, `formatVersion`, `toolVersion`, `exchanges` and each
  interaction's `cassette` are informative.

Checks, each failing with one line naming the exchange and the field (`CassetteImportError`):
malformed JSON (line and column), an unknown field (its JSON path), a malformed field, and the
checks of `recorder.exchange_checks`: a session used before the exchange that creates it (or
created twice, or answered with success without ever being created), and unless `validate` is
off, an answer the contract does not allow for its route (`recorder.answers`). Nothing is
written unless all of it passes; the cassette is written through a temp file and `os.replace`,
refused while a recorder holds it.

Must not import `mock_server`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from recorder.bodies import BodyDecodeError, Headers, codings_of, decode
from recorder.cassette import encode_header, encode_interaction, holding_lock, write_atomically
from recorder.contract import (
    DEFAULT_UPSTREAM,
    action_type_of,
    is_create,
    session_id_of,
    user_of,
)
from recorder.errors import (
    CassetteError,
    CassetteImportError,
    ContractViolationError,
    NotACassetteError,
)
from recorder.exchange_checks import check_interactions
from recorder.mcp_tools import is_mcp_path, mcp_session_of
from recorder.reader import open_cassette
from recorder.records import Interaction, RecordedRequest, RecordedResponse
from recorder.redaction import Redactor

DEFAULT_CREATED_AT = "2026-01-01T00:00:00.000Z"
JSON_TYPE = "application/json"
TOP_FIELDS = frozenset({"cassettes", "interactions"})
CASSETTE_FIELDS = frozenset(
    {"path", "formatVersion", "createdAt", "toolVersion", "upstream", "exchanges"}
)
INTERACTION_FIELDS = frozenset(
    {
        "cassette",
        "seq",
        "startedAt",
        "durationMs",
        "sessionId",
        "actionType",
        "user",
        "error",
        "request",
        "response",
    }
)
REQUEST_FIELDS = frozenset({"method", "path", "query", "headers", "body"})
RESPONSE_FIELDS = frozenset({"status", "reason", "headers", "body"})
BODY_FIELDS = frozenset({"size", "encoding", "text", "json"})
_MAX_SEQ = (1 << 53) - 1
_TWICE = "given twice (JSON would keep only the last one)"


class _Bad(Exception):
    """A problem at `field` (a dotted path inside the exchange or the document)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ImportReport:
    path: Path
    exchanges: int
    sessions: int
    replaced: bool  # an existing cassette was replaced
    mcp_sessions: int = 0  # distinct `Mcp-Session-Id`s of its `/mcp/v1` exchanges


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Object(dict[str, Any]):
    """A JSON object that remembers the names it was given more than once (`json` keeps only
    the last value: an edit that adds a field without removing the old one would go unseen)."""

    twice: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    out = _Object(pairs)
    if len(out) < len(pairs):
        names = [name for name, _ in pairs]
        out.twice = tuple(dict.fromkeys(n for i, n in enumerate(names) if n in names[:i]))
    return out


def _given_twice(value: Any, where: str) -> None:
    """Refuses a name given twice in `value` or inside it (a body's free JSON)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _given_twice(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for name in getattr(value, "twice", ()):
            raise _Bad(f"{where}.{name}", _TWICE)
        for name, item in value.items():
            _given_twice(item, f"{where}.{name}")


def parse_document(source: Path) -> Any:
    """The JSON of `source`, strictly (no NaN or Infinity); `CassetteImportError` with the line
    and column of malformed JSON."""
    try:
        raw = source.read_bytes()
    except OSError as err:
        raise CassetteImportError(source, "", f"cannot read: {err.strerror or err}") from err
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CassetteImportError(source, f"byte {err.start}", "not UTF-8 text") from err
    try:
        return json.loads(text, parse_constant=_strict_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise CassetteImportError(source, where, f"invalid JSON: {err.msg}") from err
    except (ValueError, RecursionError) as err:
        raise CassetteImportError(source, "", f"invalid JSON: {err}") from err


# -- fields --------------------------------------------------------------------------------


def _known(data: Any, allowed: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Bad(where.rstrip("."), "expected an object")
    for name in getattr(data, "twice", ()):
        raise _Bad(f"{where}{name}", _TWICE)
    for name in data:
        if name not in allowed:
            listed = ", ".join(sorted(allowed))
            raise _Bad(f"{where}{name}", f"unknown field (expected one of {listed})")
    return data


def _text(data: dict[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise _Bad(f"{where}{name}", "missing" if value is None else "expected a string")
    return value


def _optional_text(data: dict[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"{where}{name}", "expected a string or null")
    return value


def _time(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise _Bad(field, "expected an ISO 8601 time such as 2026-01-01T00:00:00.000Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(field, f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ts = parsed.timestamp()
    if not 0 <= ts <= 253_402_300_799:
        raise _Bad(field, "must be between 1970 and 9999")
    return ts


def _number(value: Any, field: str, top: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
        raise _Bad(field, f"expected a number from 0 to {top:g}")
    return float(value)


def _headers(data: dict[str, Any], where: str) -> Headers | None:
    value = data.get("headers")
    if value is None:
        return None
    pairs = []
    if isinstance(value, list):
        for i, pair in enumerate(value):
            ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            if not ok:
                raise _Bad(f"{where}headers[{i}]", 'expected a ["name", "value"] pair of strings')
            pairs.append((pair[0], pair[1]))
        return tuple(pairs)
    raise _Bad(f"{where}headers", 'expected a list of ["name", "value"] pairs')


def _body(data: dict[str, Any], where: str) -> tuple[bytes, bool]:
    """The body's bytes, and whether it was given as `json`."""
    value = data.get("body")
    if value is None:
        return b"", False
    body = _known(value, BODY_FIELDS, f"{where}body.")
    size = body.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise _Bad(f"{where}body.size", "expected an integer >= 0 (or leave it out)")
    if "json" in body:
        _given_twice(body["json"], f"{where}body.json")
        if "text" in body or "encoding" in body:
            raise _Bad(f"{where}body.json", "give either json or text (with encoding), not both")
        return json.dumps(body["json"], separators=(",", ":"), ensure_ascii=False).encode(), True
    text = body.get("text", "")
    if not isinstance(text, str):
        raise _Bad(f"{where}body.text", "expected a string")
    encoding = body.get("encoding", "utf-8")
    if encoding == "utf-8":
        return text.encode("utf-8", "surrogatepass"), False
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True), False
        except (binascii.Error, ValueError):
            raise _Bad(f"{where}body.text", "is not valid base64 (encoding: base64)") from None
    raise _Bad(f"{where}body.encoding", 'expected "utf-8" or "base64"')


def _fit_headers(headers: Headers | None, body: bytes, is_json: bool, where: str) -> Headers:
    """The given headers (a stale Content-Length too: replay never sends it, and the recorder
    keeps it when redaction shortens a body); a JSON content type when none are given. A body
    that does not decode under its Content-Encoding is refused (replay would send it)."""
    if headers is None:
        looks_json = is_json or (body[:1] in (b"{", b"[") and _is_json(body))
        return (("Content-Type", JSON_TYPE),) if looks_json else ()
    if codings_of(headers):
        try:
            decode(headers, body)
        except BodyDecodeError as err:
            problem = f"does not decode under its Content-Encoding ({err})"
            raise _Bad(f"{where}body", problem) from err
    return headers


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


# -- one exchange --------------------------------------------------------------------------


def _request(data: Any) -> tuple[RecordedRequest, bool]:
    if data is None:
        raise _Bad("request", "missing")
    req = _known(data, REQUEST_FIELDS, "request.")
    method = _text(req, "method", "request.")
    if not method or not method.isascii() or not method.isalpha():
        raise _Bad("request.method", f"{method!r} is not an HTTP method")
    path = _text(req, "path", "request.")
    if not path.startswith("/"):
        raise _Bad("request.path", "must start with /")
    query = _text(req, "query", "request.", default="")
    body, is_json = _body(req, "request.")
    headers = _fit_headers(_headers(req, "request."), body, is_json, "request.")
    return RecordedRequest(method.upper(), path, query, headers, body), is_json


def _response(data: Any) -> RecordedResponse:
    if data is None:
        raise _Bad("response", "missing")
    resp = _known(data, RESPONSE_FIELDS, "response.")
    status = resp.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise _Bad("response.status", "missing" if status is None else "expected 100..999")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    reason = _text(resp, "reason", "response.", default=phrase)
    body, is_json = _body(resp, "response.")
    headers = _fit_headers(_headers(resp, "response."), body, is_json, "response.")
    return RecordedResponse(status, headers, body, reason)


def _agree(data: dict[str, Any], name: str, derived: str | None, how: str) -> str | None:
    """A derived field: the given value must be the derived one (when both are known)."""
    if name not in data:
        return derived
    given = _optional_text(data, name, "")
    if derived is not None and given != derived:
        raise _Bad(name, f"{given!r} disagrees with {derived!r}, {how}")
    return given


def _is_stored_authorization(name: str, value: str) -> bool:
    """An `Authorization` value as the recorder stores it (`Bearer <redacted user=…>`)."""
    return name.lower() == "authorization" and value.partition(" ")[2].startswith("<redacted")


def _redacted(item: Interaction, redactor: Redactor) -> Interaction:
    """`item` through the recorder's redaction (secrets never reach disk), an `Authorization`
    value already in its stored form kept as it is (redacting it again would lose its user)."""
    out = redactor.redact(item)
    kept = tuple(
        (name, old if _is_stored_authorization(name, old) else new)
        for (name, new), (_, old) in zip(out.request.headers, item.request.headers, strict=True)
    )
    return replace(out, user=item.user, request=replace(out.request, headers=kept))


def _interaction(item: dict[str, Any], seq: int, start: float, redactor: Redactor) -> Interaction:
    request, _ = _request(item.get("request"))
    response = _response(item.get("response"))
    session_id = _agree(
        item,
        "sessionId",
        session_id_of(request, response),
        "the session named by the path or the create answer",
    )
    action = _agree(
        item,
        "actionType",
        action_type_of(request.method, request.path, request.body),
        "the type of the action request body",
    )
    duration = _number(item.get("durationMs", 0), "durationMs", 1e12) / 1000
    built = Interaction(
        seq=seq,
        start=start,
        duration=duration,
        session_id=session_id,
        action_type=action,
        user=None,
        request=request,
        response=response,
        error=_optional_text(item, "error", ""),
    )
    built = _redacted(built, redactor)
    user = _agree(item, "user", user_of(built.request.headers), "the Authorization header")
    return replace(built, user=user)


# -- the document --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    created_at: float
    upstream: str


def _header(document: dict[str, Any]) -> _Header:
    cassettes = document.get("cassettes", [])
    if not isinstance(cassettes, list):
        raise _Bad("cassettes", "expected a list")
    if len(cassettes) > 1:
        raise _Bad("cassettes", f"lists {len(cassettes)} cassettes; import one cassette's export")
    first = _known(cassettes[0], CASSETTE_FIELDS, "cassettes[0].") if cassettes else {}
    created = _time(first.get("createdAt", DEFAULT_CREATED_AT), "cassettes[0].createdAt")
    upstream = _text(first, "upstream", "cassettes[0].", default=DEFAULT_UPSTREAM)
    return _Header(created, upstream)


def _given_seqs(items: list[Any]) -> dict[int, int]:
    """seq -> position of every exchange that gives one (unique positive integers)."""
    seen: dict[int, int] = {}
    for pos, item in enumerate(items):
        if not isinstance(item, dict) or "seq" not in item:
            continue
        seq = item["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= _MAX_SEQ:
            raise _located(pos, None, _Bad("seq", "expected an integer >= 1"))
        if seq in seen:
            raise _located(pos, seq, _Bad("seq", f"{seq} is also interactions[{seen[seq]}]'s"))
        seen[seq] = pos
    return seen


def _located(pos: int, seq: int | None, bad: _Bad) -> _Bad:
    exchange = f"interactions[{pos}]" + (f" (exchange #{seq})" if seq is not None else "")
    return _Bad(f"{exchange}: {bad.field}", bad.message)


def read_interactions(document: Any) -> tuple[_Header, list[Interaction]]:
    """The cassette header and the exchanges of a parsed document; `_Bad` naming where."""
    top = _known(document, TOP_FIELDS, "")
    header = _header(top)
    items = top.get("interactions")
    if not isinstance(items, list):
        raise _Bad("interactions", "missing" if items is None else "expected a list")
    given = _given_seqs(items)
    redactor = Redactor()
    next_seq = max(given, default=0) + 1
    out: list[Interaction] = []
    start = header.created_at
    for pos, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise _located(pos, None, _Bad("", "expected an object"))
        seq = raw.get("seq")
        if seq is None:
            seq, next_seq = next_seq, next_seq + 1
        try:
            item = _known(raw, INTERACTION_FIELDS, "")
            if "startedAt" in item:
                start = _time(item["startedAt"], "startedAt")
            interaction = _interaction(item, seq, start, redactor)
        except _Bad as bad:
            raise _located(pos, seq, bad) from None
        out.append(interaction)
        start = interaction.start + interaction.duration
    return header, out


# -- writing -------------------------------------------------------------------------------


def _records(header: _Header, items: list[Interaction]) -> Iterator[bytes]:
    yield encode_header(header.upstream, header.created_at)
    for item in items:
        yield encode_interaction(item)


def _existing_cassette(path: Path) -> bool:
    """Whether `path` exists; refuses one that is not a cassette (it is not ours to replace)."""
    if not path.parent.is_dir():
        raise CassetteError(path, f"cannot write: no folder {path.parent}")
    if not path.exists():
        return False
    try:
        with open_cassette(path, allow_damage=True):
            return True
    except NotACassetteError as err:
        raise NotACassetteError(path, f"{err.message}; refusing to replace it") from err
    except CassetteError:
        return True  # a cassette, if an unreadable one: replacing it is what was asked


def import_cassette(
    source: str | os.PathLike[str], output: str | os.PathLike[str], *, validate: bool = True
) -> ImportReport:
    """Write the cassette `output` from the JSON document `source` (see the module docstring).
    Raises `CassetteImportError` (nothing written), `CassetteLockedError` while a recorder
    writes `output`, `NotACassetteError` when `output` is some other file."""
    src, out = Path(source), Path(output)
    document = parse_document(src)
    try:
        header, items = read_interactions(document)
    except _Bad as bad:
        raise CassetteImportError(src, bad.field, bad.message) from None
    found = check_interactions(items, validate=validate)
    if found is not None:
        pos, field, problem, contract = found
        bad = _located(pos, items[pos].seq, _Bad(field, problem))
        error = ContractViolationError if contract else CassetteImportError
        raise error(src, bad.field, bad.message)
    replaced = _existing_cassette(out)
    with holding_lock(out) if replaced else contextlib.nullcontext():
        write_atomically(out, _records(header, items))
    sessions = sum(1 for i in items if is_create(i.request.method, i.request.path) and i.session_id)
    mcp = {
        mcp_session_of(i.request.headers, i.response.headers)
        for i in items
        if is_mcp_path(i.request.path)
    }
    return ImportReport(out, len(items), sessions, replaced, len(mcp - {None}))
