"""The cassette file format: msgpack codec, format versions and their upgrade chain, the
append-only writer and the indexing reader.

A cassette is a msgpack stream: one header map, then one record per exchange. Since format 2
a record is a 4-array `[index, meta, request_body, response_body]` so that listing a cassette
decodes the small `index` map and skips the rest (bodies are msgpack `bin`, read on demand by
`Cassette.load`). Older formats are upgraded record by record on read (mitmproxy io/compat.py
style). A crash loses at most the record being written: the reader keeps every whole record and
reports the torn tail, which `repair_cassette` cuts off through a temp file and `os.replace`.

Must not import `mock_server`.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from recorder import __version__
from recorder.contract import action_type_of, user_of
from recorder.errors import (
    CassetteError,
    CassetteExistsError,
    CassetteVersionError,
    CorruptCassetteError,
    NotACassetteError,
    TornCassetteError,
)
from recorder.records import (
    CassetteHeader,
    IndexEntry,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    TornTail,
)

FORMAT_NAME = "capture-replay-cassette"
FORMAT_VERSION = 2
# Every header starts with a fixmap marker then this: the key "format" and its value.
_MAGIC = msgpack.packb("format") + msgpack.packb(FORMAT_NAME)
_MAX_OBJECT = 1 << 31  # largest body the reader accepts (2 GiB)
_READ_SIZE = 1 << 20


class WriteMode(StrEnum):
    NEW = "new"  # refuse an existing file
    APPEND = "append"
    OVERWRITE = "overwrite"


# ---------------------------------------------------------------------------------------------
# Codec (current format)


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


def encode_interaction(item: Interaction) -> bytes:
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


def _entry_from_index(index: dict[str, Any], offset: int, length: int) -> IndexEntry:
    return IndexEntry(
        seq=index["seq"],
        start=index["start"],
        duration=index["duration"],
        session_id=index["session_id"],
        action_type=index["action_type"],
        user=index["user"],
        method=index["method"],
        path=index["path"],
        query=index["query"],
        status=index["status"],
        request_size=index["request_size"],
        response_size=index["response_size"],
        error=index["error"],
        offset=offset,
        length=length,
    )


def _headers(pairs: list[Any]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in pairs)


def _interaction_from_record(record: list[Any]) -> Interaction:
    index, meta, req_body, resp_body = record
    return Interaction(
        seq=index["seq"],
        start=index["start"],
        duration=index["duration"],
        session_id=index["session_id"],
        action_type=index["action_type"],
        user=index["user"],
        request=RecordedRequest(
            method=index["method"],
            path=index["path"],
            query=index["query"],
            headers=_headers(meta["request_headers"]),
            body=req_body,
        ),
        response=RecordedResponse(
            status=index["status"],
            headers=_headers(meta["response_headers"]),
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
    req, resp = record["request"], record["response"]
    req_headers = [[k, v] for k, v in req["headers"].items()]
    index = {
        "seq": record["seq"],
        "start": record["start"],
        "duration": 0.0,
        "session_id": record.get("session_id"),
        "action_type": action_type_of(req["method"], req["path"], req["body"]),
        "user": user_of(_headers(req_headers)),
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


# _UPGRADES[n] turns a record of format n into one of format n + 1.
_UPGRADES: dict[int, Callable[[Any], Any]] = {1: _record_v1_to_v2}


def upgrade_record(record: Any, version: int) -> Any:
    while version < FORMAT_VERSION:
        record = _UPGRADES[version](record)
        version += 1
    return record


# ---------------------------------------------------------------------------------------------
# Reader


def _read_header(path: Path, f: BinaryIO) -> tuple[dict[str, Any], int]:
    head = f.read(64)
    if not head:
        raise NotACassetteError(path, "empty file, not a capture-replay cassette")
    if not (0x80 <= head[0] <= 0x8F) or head[1 : 1 + len(_MAGIC)] != _MAGIC[: len(head) - 1]:
        raise NotACassetteError(path, "not a capture-replay cassette")
    f.seek(0)
    unpacker = msgpack.Unpacker(f, raw=False, read_size=4096, max_buffer_size=1 << 20)
    try:
        header = unpacker.unpack()
    except msgpack.OutOfData as err:
        raise CorruptCassetteError(path, "the header is truncated", 0) from err
    except (ValueError, msgpack.UnpackException) as err:
        raise CorruptCassetteError(path, f"unreadable header ({err})", 0) from err
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise CorruptCassetteError(path, f"invalid format version {version!r}", 0)
    if version > FORMAT_VERSION:
        raise CassetteVersionError(path, version, FORMAT_VERSION)
    return header, unpacker.tell()


class Cassette:
    """An open cassette: `.header`, `.entries` (lightweight, file order), `.torn_tail`, and
    `.load(entry)` to read one whole exchange. Use as a context manager, or call `close()`."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file = file
        self._lock = threading.Lock()
        raw_header, offset = _read_header(path, file)
        self.version: int = raw_header["version"]
        try:
            self.header = CassetteHeader(
                format=raw_header["format"],
                version=self.version,
                created_at=float(raw_header["created_at"]),
                tool_version=str(raw_header["tool_version"]),
                upstream=str(raw_header["upstream"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CorruptCassetteError(path, f"incomplete header ({err})", 0) from err
        self.header_size = offset
        self.entries: tuple[IndexEntry, ...]
        self.torn_tail: TornTail | None
        self.entries, self.torn_tail = self._index(offset)

    def _index(self, offset: int) -> tuple[tuple[IndexEntry, ...], TornTail | None]:
        f = self._file
        size = os.fstat(f.fileno()).st_size
        f.seek(offset)
        unpacker = msgpack.Unpacker(f, raw=False, read_size=_READ_SIZE, max_buffer_size=_MAX_OBJECT)
        entries: list[IndexEntry] = []
        current = self.version == FORMAT_VERSION
        start = offset
        while True:
            start = offset + unpacker.tell()
            if start >= size:
                return tuple(entries), None
            try:
                if current:
                    if unpacker.read_array_header() != 4:
                        raise ValueError("a record is not a 4-array")
                    index = unpacker.unpack()
                    unpacker.skip()
                    unpacker.skip()
                    unpacker.skip()
                    end = offset + unpacker.tell()
                    entries.append(_entry_from_index(index, start, end - start))
                else:
                    record = upgrade_record(unpacker.unpack(), self.version)
                    end = offset + unpacker.tell()
                    entries.append(_entry_from_index(record[0], start, end - start))
            except msgpack.OutOfData:
                return tuple(entries), TornTail(start, size - start, "truncated record")
            except (
                ValueError,
                KeyError,
                TypeError,
                AttributeError,
                msgpack.UnpackException,
            ) as err:
                return tuple(entries), TornTail(start, size - start, f"undecodable record ({err})")

    def load(self, entry: IndexEntry) -> Interaction:
        """The whole exchange of `entry` (headers, bodies), upgraded to the current format."""
        with self._lock:
            self._file.seek(entry.offset)
            data = self._file.read(entry.length)
        try:
            record = upgrade_record(msgpack.unpackb(data, raw=False), self.version)
            return _interaction_from_record(record)
        except (ValueError, KeyError, TypeError, msgpack.UnpackException) as err:
            raise CorruptCassetteError(self.path, f"bad record ({err})", entry.offset) from err

    def request_body(self, entry: IndexEntry) -> bytes:
        """Only the request body of `entry` (the answer, maybe a large screenshot, is not read)."""
        if self.version != FORMAT_VERSION:
            return self.load(entry).request.body
        with self._lock:
            self._file.seek(entry.offset)
            unpacker = msgpack.Unpacker(
                self._file,
                raw=False,
                read_size=min(entry.length, 1 << 16),
                max_buffer_size=_MAX_OBJECT,
            )
            try:
                unpacker.read_array_header()
                unpacker.skip()
                unpacker.skip()
                body = unpacker.unpack()
            except (ValueError, msgpack.OutOfData, msgpack.UnpackException) as err:
                raise CorruptCassetteError(self.path, f"bad record ({err})", entry.offset) from err
        if not isinstance(body, bytes):
            raise CorruptCassetteError(self.path, "request body is not bytes", entry.offset)
        return body

    def interactions(self) -> Iterator[Interaction]:
        for entry in self.entries:
            yield self.load(entry)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Cassette:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cassette(path: str | os.PathLike[str]) -> Cassette:
    """Open and index a cassette. Raises `NotACassetteError`, `CassetteVersionError`,
    `CorruptCassetteError` (an unreadable header); a torn tail is reported, not raised."""
    p = Path(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 - owned by the Cassette
    except IsADirectoryError as err:
        raise NotACassetteError(p, "is a directory, not a cassette") from err
    except OSError as err:
        raise CassetteError(p, f"cannot open: {err.strerror or err}") from err
    try:
        return Cassette(p, f)
    except BaseException:
        f.close()
        raise


# ---------------------------------------------------------------------------------------------
# Writer


def _write_atomically(path: Path, chunks: Iterator[bytes]) -> None:
    """Write a whole new file beside `path`, fsync it, then `os.replace` it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rewrite_current(cassette: Cassette) -> None:
    """Rewrite an older-format cassette (its whole records) in the current format, atomically."""
    header = encode_header(cassette.header.upstream, cassette.header.created_at)
    records = (encode_interaction(cassette.load(e)) for e in cassette.entries)
    _write_atomically(cassette.path, _chain(header, records))


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


@dataclass(frozen=True, slots=True)
class RepairReport:
    kept: int  # whole records kept
    cut_bytes: int  # bytes of torn tail removed (0: nothing to do)
    reason: str | None


def repair_cassette(path: str | os.PathLike[str]) -> RepairReport:
    """Cut a torn tail off `path` (through a temp file and `os.replace`); whole records are kept."""
    p = Path(path)
    with open_cassette(p) as cassette:
        torn = cassette.torn_tail
        kept = len(cassette.entries)
        if torn is None:
            return RepairReport(kept, 0, None)
        f = cassette._file
        f.seek(0)

        def chunks() -> Iterator[bytes]:
            remaining = torn.offset
            while remaining:
                chunk = f.read(min(remaining, _READ_SIZE))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

        _write_atomically(p, chunks())
    return RepairReport(kept, torn.size, torn.reason)


class CassetteWriter:
    """Append-only writer: one header, then one flushed record per `append`.

    Safe to call from several threads or tasks at once: a record is packed outside the lock and
    written whole under it, so records never interleave. `next_seq()` hands out unique sequence
    numbers (continuing after the last record when appending).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        upstream: str,
        mode: WriteMode = WriteMode.NEW,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self.records_written = 0
        first_seq = 1
        mode = WriteMode(mode)
        if mode is WriteMode.APPEND and self.path.exists() and self.path.stat().st_size > 0:
            with open_cassette(self.path) as existing:
                if existing.torn_tail is not None:
                    raise TornCassetteError(
                        self.path,
                        f"ends in a torn record ({existing.torn_tail.size} bytes at byte "
                        f"{existing.torn_tail.offset}); repair it first",
                    )
                if existing.version < FORMAT_VERSION:
                    rewrite_current(existing)
                first_seq = max((e.seq for e in existing.entries), default=0) + 1
            self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        else:
            if mode is WriteMode.NEW and self.path.exists():
                raise CassetteExistsError(self.path, "already exists")
            try:
                self._file = open(self.path, "xb" if mode is WriteMode.NEW else "wb")  # noqa: SIM115
            except FileExistsError as err:
                raise CassetteExistsError(self.path, "already exists") from err
            self._write(encode_header(upstream))
        self._seq = first_seq
        self._seq_lock = threading.Lock()

    def next_seq(self) -> int:
        with self._seq_lock:
            seq = self._seq
            self._seq += 1
            return seq

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def append(self, interaction: Interaction) -> None:
        data = encode_interaction(interaction)
        with self._lock:
            self._write(data)
            self.records_written += 1

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()

    def __enter__(self) -> CassetteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
