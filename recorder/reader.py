"""Reading cassettes: the indexing reader of `recorder.cassette`'s files.

Listing a cassette indexes the small `index` maps and keeps no body (`Cassette.load` reads one
exchange on demand). Every record read is checked (checksum, then every index field's type and
range); bytes that form no whole record are damage: between whole records a `Gap` (the reader
finds the next whole record again by its sync marker, or by a record's start bytes in formats 1
and 2), after the last one a `TornTail` (a crash mid-write). `open_cassette` refuses a cassette
with gaps unless asked to report them. The bytes of a record are `recorder.codec`'s.

Must not import `mock_server`, aiohttp, click or Pillow.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from recorder.codec import (
    FORMAT_VERSION,
    FRAME_SIZE,
    MAGIC,
    MAX_RECORD,
    RECORD_STARTS,
    BadRecordError,
    TruncatedRecordError,
    check_record,
    decode_record,
    frame_length,
    index_of_payload,
    interaction_from_record,
    unframe,
    upgrade_record,
)
from recorder.errors import (
    CassetteError,
    CassetteVersionError,
    CorruptCassetteError,
    DamagedCassetteError,
    NotACassetteError,
)
from recorder.records import CassetteHeader, IndexEntry, Interaction, TornTail

_READ_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Gap:
    """Damaged bytes between whole records: `size` bytes at `offset` that form no record,
    after the record `after_seq` (None: right after the header) and before `before_seq`."""

    offset: int
    size: int
    reason: str
    after_seq: int | None
    before_seq: int | None


def _where(gap: Gap) -> str:
    if gap.after_seq is None:
        return f"before record #{gap.before_seq} (the first)"
    return f"between records #{gap.after_seq} and #{gap.before_seq}"


def describe_damage(gaps: tuple[Gap, ...], torn: TornTail | None, kept: int) -> str:
    """One line saying what is damaged, how many bytes and where (no CLI wording)."""
    parts = [f"{g.size} bytes at byte {g.offset} {_where(g)} ({g.reason})" for g in gaps]
    if torn is not None:
        parts.append(f"a torn tail of {torn.size} bytes at byte {torn.offset} ({torn.reason})")
    return f"damaged: {'; '.join(parts)}; {kept} whole records readable"


# ---------------------------------------------------------------------------------------------
# Reader


def _read_header(path: Path, f: BinaryIO) -> tuple[dict[str, Any], int]:
    head = f.read(64)
    if not head:
        raise NotACassetteError(path, "empty file, not a capture-replay cassette")
    if not (0x80 <= head[0] <= 0x8F) or head[1 : 1 + len(MAGIC)] != MAGIC[: len(head) - 1]:
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
    if type(version) is not int or version < 1:
        raise CorruptCassetteError(path, f"invalid format version {version!r}", 0)
    if version > FORMAT_VERSION:
        raise CassetteVersionError(path, version, FORMAT_VERSION)
    return header, unpacker.tell()


class Cassette:
    """An open cassette: `.header`, `.entries` (whole records, file order), `.gaps` (damage
    between them), `.torn_tail`, and `.load(entry)` to read one whole exchange. Use as a context
    manager, or call `close()`."""

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
        self._size = os.fstat(file.fileno()).st_size
        self._stream: tuple[int, msgpack.Unpacker] | None = None
        self._window: tuple[int, bytes] = (0, b"")
        self.entries: tuple[IndexEntry, ...]
        self.gaps: tuple[Gap, ...]
        self.torn_tail: TornTail | None
        self.entries, self.gaps, self.torn_tail = self._index(offset)
        self._stream = None
        self._window = (0, b"")

    @property
    def damaged(self) -> bool:
        """Whether bytes between whole records were skipped (a torn tail alone is not this)."""
        return bool(self.gaps)

    def describe_damage(self) -> str:
        return describe_damage(self.gaps, self.torn_tail, len(self.entries))

    # -- indexing ------------------------------------------------------------------------------

    def _view(self, pos: int, size: int) -> memoryview:
        """Bytes [pos, pos + size) of the file (fewer at its end), from a read-ahead window."""
        start, window = self._window
        if not (start <= pos and pos + size <= start + len(window)):
            self._file.seek(pos)
            window = self._file.read(max(size, _READ_SIZE))
            start = pos
            self._window = (pos, window)
        return memoryview(window)[pos - start : pos - start + size]

    def _record_at(self, pos: int) -> tuple[dict[str, Any], int]:
        """The checked index of the record starting at `pos` and the record's length on disk;
        `BadRecordError` when no whole record starts there."""
        if self.version < 3:
            record, length = self._unframed_record_at(pos)
            return record[0], length
        length = frame_length(self._view(pos, FRAME_SIZE))
        if pos + FRAME_SIZE + length > self._size:
            raise TruncatedRecordError("truncated record")
        payload = unframe(self._view(pos, FRAME_SIZE + length))
        return index_of_payload(payload), FRAME_SIZE + length

    def _unframed_record_at(self, pos: int) -> tuple[list[Any], int]:
        """Formats 1 and 2: a record is one msgpack object, read through a stream unpacker that
        is kept while records follow each other."""
        if self._stream is None or self._stream[0] + self._stream[1].tell() != pos:
            self._file.seek(pos)
            unpacker = msgpack.Unpacker(
                self._file, raw=False, read_size=_READ_SIZE, max_buffer_size=MAX_RECORD
            )
            self._stream = (pos, unpacker)
        base, unpacker = self._stream
        try:
            raw = unpacker.unpack()
        except msgpack.OutOfData as err:
            self._stream = None
            raise TruncatedRecordError("truncated record") from err
        except (ValueError, msgpack.UnpackException) as err:
            self._stream = None
            raise BadRecordError(f"undecodable record ({err})") from err
        end = base + unpacker.tell()
        try:
            return check_record(upgrade_record(raw, self.version)), end - pos
        except BadRecordError:
            self._stream = None
            raise

    def _resync(self, start: int) -> tuple[int, dict[str, Any], int] | None:
        """The first whole record at or after `start`, found by its start bytes."""
        marker = RECORD_STARTS[self.version]
        pos = start
        while pos < self._size:
            self._stream = None  # the scan moves the file under a stream unpacker
            self._file.seek(pos)
            chunk = self._file.read(_READ_SIZE + len(marker) - 1)
            found = chunk.find(marker)
            while found >= 0:
                candidate = pos + found
                with contextlib.suppress(BadRecordError):
                    index, length = self._record_at(candidate)
                    return candidate, index, length
                found = chunk.find(marker, found + 1)
            if len(chunk) < _READ_SIZE:
                return None
            pos += _READ_SIZE
        return None

    def _index(
        self, offset: int
    ) -> tuple[tuple[IndexEntry, ...], tuple[Gap, ...], TornTail | None]:
        entries: list[IndexEntry] = []
        gaps: list[Gap] = []
        pos = offset
        while pos < self._size:
            try:
                index, length = self._record_at(pos)
            except BadRecordError as err:
                found = self._resync(pos + 1)
                if found is None:
                    return tuple(entries), tuple(gaps), TornTail(pos, self._size - pos, str(err))
                after = entries[-1].seq if entries else None
                next_pos, index, length = found
                gaps.append(Gap(pos, next_pos - pos, str(err), after, index["seq"]))
                pos = next_pos
            entries.append(_entry(index, pos, length))
            pos += length
        return tuple(entries), tuple(gaps), None

    # -- reading one record --------------------------------------------------------------------

    def _payload(self, entry: IndexEntry) -> bytes | memoryview:
        with self._lock:
            self._file.seek(entry.offset)
            data = self._file.read(entry.length)
        return unframe(data) if self.version >= 3 else data

    def load(self, entry: IndexEntry) -> Interaction:
        """The whole exchange of `entry` (headers, bodies), upgraded to the current format."""
        try:
            return interaction_from_record(decode_record(self._payload(entry), self.version))
        except BadRecordError as err:
            raise CorruptCassetteError(self.path, f"bad record ({err})", entry.offset) from err

    def request_body(self, entry: IndexEntry) -> bytes:
        """Only the request body of `entry` (the answer, maybe a large screenshot, is not read)."""
        if self.version < 2:
            return self.load(entry).request.body
        start = entry.offset + (FRAME_SIZE if self.version >= 3 else 0)
        with self._lock:
            self._file.seek(start)
            unpacker = msgpack.Unpacker(
                self._file,
                raw=False,
                read_size=max(1, min(entry.length, 1 << 16)),
                max_buffer_size=MAX_RECORD,
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

    def raw_records(self) -> Iterator[bytes]:
        """The bytes of every whole record, in file order (what `repair` keeps)."""
        for entry in self.entries:
            with self._lock:
                self._file.seek(entry.offset)
                yield self._file.read(entry.length)

    def raw_header(self) -> bytes:
        with self._lock:
            self._file.seek(0)
            return self._file.read(self.header_size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Cassette:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entry(index: dict[str, Any], offset: int, length: int) -> IndexEntry:
    return IndexEntry(
        seq=index["seq"],
        start=float(index["start"]),
        duration=float(index["duration"]),
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


def open_cassette(path: str | os.PathLike[str], *, allow_damage: bool = False) -> Cassette:
    """Open and index a cassette. Raises `NotACassetteError`, `CassetteVersionError`,
    `CorruptCassetteError` (an unreadable header), and `DamagedCassetteError` when bytes between
    whole records had to be skipped, unless `allow_damage` (then `.gaps` lists them). A torn
    tail is reported (`.torn_tail`), not raised."""
    p = Path(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 - owned by the Cassette
    except IsADirectoryError as err:
        raise NotACassetteError(p, "is a directory, not a cassette") from err
    except OSError as err:
        raise CassetteError(p, f"cannot open: {err.strerror or err}") from err
    try:
        cassette = Cassette(p, f)
    except BaseException:
        f.close()
        raise
    if cassette.gaps and not allow_damage:
        cassette.close()
        raise DamagedCassetteError(p, cassette.describe_damage(), cassette.gaps[0].offset)
    return cassette
