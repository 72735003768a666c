"""The cassette's bytes: the msgpack codec of the header and the records, the format-3 record
frame (sync marker, length, CRC32), the check of every record read, and the format versions with
their chain of upgrade steps (mitmproxy io/compat.py style).

Bytes in, values out: no file handling (that is `recorder.cassette`'s). Must not import
`mock_server`, aiohttp, click or Pillow.

Format 3 puts each record in a frame, `SYNC | length (u32 BE) | CRC32 (u32 BE) | payload`, where
the payload is format 2's record (`[index, meta, request_body, response_body]` in msgpack) and the
CRC32 covers the length field and the payload. The frame lets a reader tell a damaged record from
a whole one and find the next whole record after damage (scan for `SYNC`, check the frame).
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import msgpack

from recorder import __version__
from recorder.contract import action_type_of, user_of
from recorder.records import Interaction, RecordedRequest, RecordedResponse

FORMAT_NAME = "capture-replay-cassette"
FORMAT_VERSION = 3
# Every header starts with a fixmap marker then this: the key "format" and its value.
MAGIC = msgpack.packb("format") + msgpack.packb(FORMAT_NAME)
# 0xc1 is the one byte msgpack never uses as a type, so a record never starts with it.
SYNC = b"\xc1\x1aCRREC\n"
_FRAME = struct.Struct(">8sII")
FRAME_SIZE = _FRAME.size
MAX_RECORD = (1 << 31) - 1  # largest record payload written or read (2 GiB)
# Where a record of an unframed format begins, to find whole records again after damage:
# format 2 starts with a 4-array whose first item is the 13-key index map (its first key "seq");
# format 1 with the 5-key record map whose first key is "seq".
RECORD_STARTS = {1: b"\x85\xa3seq", 2: b"\x94\x8d\xa3seq", 3: SYNC}

_MAX_COUNT = (1 << 53) - 1  # the largest integer every JSON reader keeps exactly
_MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last second datetime shows
_MAX_SECONDS = 1e9


class BadRecordError(ValueError):
    """A record that is not a whole, well-formed record (the reader turns it into damage)."""


class TruncatedRecordError(BadRecordError):
    """A record whose frame says it is longer than what the file holds."""


def encode_header(upstream: str, created_at: float | None = None) -> bytes:
    return msgpack.packb(
        {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created_at": time.time() if created_at is None else created_at,
            "tool_version": __version__,
            "upstream": upstream,
        }
    )


def _pairs(headers: Any) -> list[list[str]]:
    return [[k, v] for k, v in headers]


def encode_record(item: Interaction) -> bytes:
    """The unframed record (format 2's whole record, format 3's frame payload)."""
    req, resp = item.request, item.response
    index = {
        "seq": item.seq,
        "start": item.start,
        "duration": item.duration,
        "session_id": item.session_id,
        "action_type": item.action_type,
        "user": item.user,
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "status": resp.status,
        "request_size": len(req.body),
        "response_size": len(resp.body),
        "error": item.error,
    }
    meta = {
        "request_headers": _pairs(req.headers),
        "response_headers": _pairs(resp.headers),
        "reason": resp.reason,
    }
    return msgpack.packb([index, meta, bytes(req.body), bytes(resp.body)], use_bin_type=True)


def _checksum(length: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(length))


def frame(payload: bytes) -> bytes:
    """`payload` in a format-3 frame."""
    if len(payload) > MAX_RECORD:
        raise BadRecordError(f"a record of {len(payload)} bytes is over the 2 GiB limit")
    length = struct.pack(">I", len(payload))
    return SYNC + length + struct.pack(">I", _checksum(length, payload)) + payload


def encode_interaction(item: Interaction) -> bytes:
    """One record of the current format, as the writer appends it."""
    return frame(encode_record(item))


def frame_length(head: bytes | memoryview) -> int:
    """The payload length a frame's first `FRAME_SIZE` bytes announce; `BadRecordError` when
    they are no frame."""
    if bytes(head[: len(SYNC)]) != SYNC[: len(head)]:
        raise BadRecordError("undecodable record (no sync marker)")
    if len(head) < FRAME_SIZE:
        raise TruncatedRecordError("truncated record frame")
    length = _FRAME.unpack(head[:FRAME_SIZE])[1]
    if length > MAX_RECORD:
        raise BadRecordError(f"record length {length} over the limit")
    return length


def unframe(data: bytes | memoryview) -> memoryview:
    """The payload of the whole frame at the start of `data`; `BadRecordError` when its
    checksum fails."""
    view = memoryview(data)
    length = frame_length(view[:FRAME_SIZE])
    payload = view[FRAME_SIZE : FRAME_SIZE + length]
    if len(payload) < length:
        raise TruncatedRecordError("truncated record")
    crc = _FRAME.unpack(view[:FRAME_SIZE])[2]
    if _checksum(view[8:12], payload) != crc:
        raise BadRecordError("checksum mismatch")
    return payload


# ---------------------------------------------------------------------------------------------
# Checks: a record read from disk is used only once every field has its type and a sane range.


_NUMBERS = (int, float)
_TEXT_FIELDS = ("method", "path", "query")
_OPTIONAL_TEXT_FIELDS = ("session_id", "action_type", "user", "error")
_INDEX_KEYS = frozenset(
    (
        "seq",
        "start",
        "duration",
        "status",
        "request_size",
        "response_size",
        *_TEXT_FIELDS,
        *_OPTIONAL_TEXT_FIELDS,
    )
)


def _bad(name: str) -> BadRecordError:
    return BadRecordError(f"the record's index has an invalid {name!r}")


def check_index(index: Any) -> dict[str, Any]:
    """`index` when every field has its type and range (no NaN, no infinity, no integer past
    2^53, no wrong type); `BadRecordError` naming the first bad field otherwise. Written out
    field by field: it runs once per record whenever a cassette is opened."""
    if type(index) is not dict:
        raise BadRecordError("the record's index is not a map")
    if not _INDEX_KEYS <= index.keys():
        missing = sorted(_INDEX_KEYS - index.keys())[0]
        raise BadRecordError(f"the record's index has no {missing!r}")
    for name in ("seq", "request_size", "response_size"):
        value = index[name]
        if type(value) is not int or not 0 <= value <= _MAX_COUNT:
            raise _bad(name)
    value = index["start"]
    if type(value) not in _NUMBERS or not 0 <= value <= _MAX_EPOCH:  # NaN fails both
        raise _bad("start")
    value = index["duration"]
    if type(value) not in _NUMBERS or not 0 <= value <= _MAX_SECONDS:
        raise _bad("duration")
    value = index["status"]
    if type(value) is not int or not 100 <= value <= 999:
        raise _bad("status")
    for name in _TEXT_FIELDS:
        if type(index[name]) is not str:
            raise _bad(name)
    for name in _OPTIONAL_TEXT_FIELDS:
        value = index[name]
        if value is not None and type(value) is not str:
            raise _bad(name)
    return index


def _check_headers(pairs: Any, which: str) -> tuple[tuple[str, str], ...]:
    if type(pairs) is list:
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                break
            name, value = pair
            if type(name) is not str or type(value) is not str:
                break
        else:
            return tuple((k, v) for k, v in pairs)
    raise BadRecordError(f"the record's {which} headers are not name-value text pairs")


def _check_meta(meta: Any) -> None:
    if type(meta) is not dict:
        raise BadRecordError("the record's meta is not a map")
    _check_headers(meta.get("request_headers"), "request")
    _check_headers(meta.get("response_headers"), "response")
    if type(meta.get("reason", "")) is not str:
        raise BadRecordError("the record's reason is not text")


def check_record(record: Any) -> list[Any]:
    """`record` (current format, decoded) when all of it is well formed; `BadRecordError`
    otherwise."""
    if type(record) is not list or len(record) != 4:
        raise BadRecordError("a record is not a 4-array")
    index, meta, req_body, resp_body = record
    check_index(index)
    _check_meta(meta)
    if type(req_body) is not bytes or type(resp_body) is not bytes:
        raise BadRecordError("a body of the record is not binary")
    return record


def index_of_payload(payload: bytes | memoryview) -> dict[str, Any]:
    """The index map of a current-format record payload, once all of the record passed the
    checks (decoding the bodies whole is cheaper than walking around them)."""
    return decode_record(payload, FORMAT_VERSION)[0]


def decode_record(payload: bytes | memoryview, version: int) -> list[Any]:
    """One record (unframed bytes) of format `version`, upgraded and checked."""
    try:
        raw = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as err:
        raise BadRecordError(f"undecodable record ({err})") from err
    return check_record(upgrade_record(raw, version))


def interaction_from_record(record: list[Any]) -> Interaction:
    """The `Interaction` of a record that passed `check_record`."""
    index, meta, req_body, resp_body = record
    return Interaction(
        seq=index["seq"],
        start=float(index["start"]),
        duration=float(index["duration"]),
        session_id=index["session_id"],
        action_type=index["action_type"],
        user=index["user"],
        request=RecordedRequest(
            method=index["method"],
            path=index["path"],
            query=index["query"],
            headers=_check_headers(meta["request_headers"], "request"),
            body=req_body,
        ),
        response=RecordedResponse(
            status=index["status"],
            headers=_check_headers(meta["response_headers"], "response"),
            body=resp_body,
            reason=meta.get("reason", ""),
        ),
        error=index["error"],
    )


# ---------------------------------------------------------------------------------------------
# Versions: one upgrade step per historical format, applied in a chain on read.


def _record_v1_to_v2(record: Any) -> list[Any]:
    """Format 1 stored one nested map per exchange with headers as a dict (duplicates lost),
    no duration, no action type and no user; the bodies sat inside the maps."""
    try:
        req, resp = record["request"], record["response"]
        req_headers = [[k, v] for k, v in req["headers"].items()]
        index = {
            "seq": record["seq"],
            "start": record["start"],
            "duration": 0.0,
            "session_id": record.get("session_id"),
            "action_type": action_type_of(req["method"], req["path"], req["body"]),
            "user": user_of(tuple((str(k), str(v)) for k, v in req_headers)),
            "method": req["method"],
            "path": req["path"],
            "query": req["query"],
            "status": resp["status"],
            "request_size": len(req["body"]),
            "response_size": len(resp["body"]),
            "error": None,
        }
        meta = {
            "request_headers": req_headers,
            "response_headers": [[k, v] for k, v in resp["headers"].items()],
            "reason": "",
        }
        return [index, meta, req["body"], resp["body"]]
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise BadRecordError(f"malformed format-1 record ({type(err).__name__}: {err})") from err


def _record_v2_to_v3(record: Any) -> Any:
    """Format 3 changed the framing only (sync marker, length, CRC32): the record is the same."""
    return record


# _UPGRADES[n] turns a record of format n into one of format n + 1.
_UPGRADES: dict[int, Callable[[Any], Any]] = {1: _record_v1_to_v2, 2: _record_v2_to_v3}


def upgrade_record(record: Any, version: int) -> Any:
    while version < FORMAT_VERSION:
        record = _UPGRADES[version](record)
        version += 1
    return record
