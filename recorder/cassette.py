"""Cassette files: repair and the append-only, locked writer; the indexing reader is
`recorder.reader`'s (re-exported here), the bytes of a record `recorder.codec`'s.

A cassette is a header map, then one record per exchange (format 3: each in a frame with a sync
marker, its length and a CRC32). Listing a cassette indexes the small `index` maps and keeps no
body (`Cassette.load` reads one exchange on demand). Every record read is checked (checksum, then
every index field's type and range); bytes that form no whole record are damage: between whole
records a `Gap` (the reader finds the next whole record again by its sync marker), after the
last one a `TornTail` (a crash mid-write). `open_cassette` refuses a cassette with gaps unless
asked to report them; `repair_cassette` keeps every whole record, through a temp file and
`os.replace`, and keeps the original as `FILE.bak`.

The writer holds an exclusive `flock` on the cassette (its pid in the `FILE.lock` sidecar, so a
second writer's refusal can name it), notices a cassette deleted or replaced under it, and rolls
a failed append back to the last whole record.

Must not import `mock_server`, aiohttp, click or Pillow.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from recorder.codec import (
    FORMAT_NAME,
    FORMAT_VERSION,
    encode_header,
    encode_interaction,
    upgrade_record,
)
from recorder.errors import (
    CassetteError,
    CassetteExistsError,
    CassetteLockedError,
    CassetteReplacedError,
    CassetteWriteError,
    NotACassetteError,
    TornCassetteError,
)
from recorder.reader import Cassette, Gap, describe_damage, open_cassette
from recorder.records import Interaction, TornTail

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Cassette",
    "CassetteWriter",
    "Gap",
    "RepairReport",
    "WriteMode",
    "describe_damage",
    "encode_header",
    "encode_interaction",
    "holding_lock",
    "lock_holder",
    "open_cassette",
    "repair_cassette",
    "rewrite_current",
    "upgrade_record",
    "write_atomically",
]

_READ_SIZE = 1 << 20


class WriteMode(StrEnum):
    NEW = "new"  # refuse an existing file
    APPEND = "append"
    OVERWRITE = "overwrite"


# ---------------------------------------------------------------------------------------------
# Whole-file rewrites and repair


def _write_atomically(path: Path, chunks: Iterator[bytes], *, keep_locked: bool = False) -> int:
    """Write a whole new file beside `path`, fsync it, then `os.replace` it over `path`.
    With `keep_locked`, the new file is `flock`ed before it replaces `path` and its open fd is
    returned (else -1)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, os.stat(path).st_mode & 0o777)
        if keep_locked:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for chunk in chunks:
            _write_all(fd, chunk)
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    if keep_locked:
        return fd
    os.close(fd)
    return -1


def write_atomically(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> None:
    """Write a whole new file at `path` from `chunks` through a temp file beside it and
    `os.replace` (a failure leaves `path` as it was). Take `holding_lock` first when `path` is a
    cassette a recorder may be writing."""
    _write_atomically(Path(path), iter(chunks))


def _current_records(cassette: Cassette) -> Iterator[bytes]:
    yield encode_header(cassette.header.upstream, cassette.header.created_at)
    for entry in cassette.entries:
        yield encode_interaction(cassette.load(entry))


def rewrite_current(cassette: Cassette) -> None:
    """Rewrite an older-format cassette (its whole records) in the current format, atomically."""
    _write_atomically(cassette.path, _current_records(cassette))


@dataclass(frozen=True, slots=True)
class RepairReport:
    kept: int  # whole records kept (all of them)
    cut_bytes: int  # bytes removed: the gaps and the torn tail (0: nothing to do)
    reason: str | None  # what was wrong, one line
    gaps: tuple[Gap, ...] = ()
    torn_tail: TornTail | None = None
    backup: Path | None = None  # where the original was kept


def _backup_name(path: Path) -> Path:
    candidate = path.with_name(path.name + ".bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{n}")
        n += 1
    return candidate


def repair_cassette(path: str | os.PathLike[str], *, backup: bool = True) -> RepairReport:
    """Keep every whole record of `path` and drop the bytes between and after them that form
    none (a damaged record, a torn tail), through a temp file and `os.replace`. The original is
    kept as `FILE.bak` (or `FILE.bak.N` when that exists) unless `backup` is false. Refuses a
    cassette a writer holds (`CassetteLockedError`)."""
    p = Path(path)
    with _locked(p), open_cassette(p, allow_damage=True) as cassette:
        cut = sum(g.size for g in cassette.gaps) + (
            cassette.torn_tail.size if cassette.torn_tail else 0
        )
        kept = len(cassette.entries)
        if not cut:
            return RepairReport(kept, 0, None)
        reason = cassette.describe_damage()
        kept_as = None
        if backup:
            kept_as = _backup_name(p)
            try:
                os.link(p, kept_as)
            except OSError:
                shutil.copy2(p, kept_as)

        def chunks() -> Iterator[bytes]:
            yield cassette.raw_header()
            yield from cassette.raw_records()

        try:
            _write_atomically(p, chunks())
        except BaseException:
            if kept_as is not None:  # the original was not touched: no backup needed
                kept_as.unlink(missing_ok=True)
            raise
        return RepairReport(kept, cut, reason, cassette.gaps, cassette.torn_tail, kept_as)


# ---------------------------------------------------------------------------------------------
# Locking: an exclusive flock on the cassette; the holder's pid in the FILE.lock sidecar.


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def lock_holder(path: str | os.PathLike[str]) -> int | None:
    """The pid written by the writer that holds `path`, when it can be read."""
    try:
        text = _sidecar(Path(path)).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def _open_locked(path: Path, flags: int) -> int:
    """Open `path` with `flags` and take its exclusive lock without waiting; the fd refers to
    the file now at `path` (one replaced between open and lock is opened again)."""
    for _ in range(10):
        fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CassetteLockedError(path, lock_holder(path)) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)
    raise CassetteError(path, "keeps being replaced while it is opened")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the writer's lock on an existing `path` (repair must not race a recorder)."""
    try:
        fd = _open_locked(path, os.O_RDONLY)
    except FileNotFoundError as err:
        raise CassetteError(path, "cannot open: No such file or directory") from err
    except IsADirectoryError as err:
        raise NotACassetteError(path, "is a directory, not a cassette") from err
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def holding_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the writer's lock on the existing cassette `path` (`CassetteLockedError` while a
    recorder holds it), so that a whole-file rewrite does not race a recorder."""
    with _locked(Path(path)):
        yield


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# ---------------------------------------------------------------------------------------------
# Writer


class CassetteWriter:
    """Append-only writer: one header, then one flushed record per `append`.

    Holds an exclusive `flock` on the cassette while open (a second writer gets
    `CassetteLockedError` naming this process's pid, read from `FILE.lock`). Each append checks
    that `path` is still the file being written (`CassetteReplacedError` once it was deleted or
    replaced: every later append raises it too), and a write that fails (`OSError`, e.g. a full
    disk) is truncated back to the last whole record and raised as `CassetteWriteError`; later
    appends are tried again.

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
        self._fd = -1
        self._end = 0  # where the last whole record ends
        self._gone: CassetteReplacedError | None = None
        self._needs_truncate = False
        mode = WriteMode(mode)
        first_seq = 1
        if mode is WriteMode.NEW:
            try:
                self._fd = _open_locked(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError as err:
                raise CassetteExistsError(self.path, "already exists") from err
        else:
            self._fd = _open_locked(self.path, os.O_RDWR | os.O_CREAT)
        try:
            self._write_pid()
            size = os.fstat(self._fd).st_size
            if mode is WriteMode.APPEND and size > 0:
                first_seq = self._continue()
            else:
                os.ftruncate(self._fd, 0)
                self._append_bytes(encode_header(upstream))
        except BaseException:
            self._release()
            raise
        self._seq = first_seq
        self._seq_lock = threading.Lock()

    def _continue(self) -> int:
        """Check the existing cassette (whole, current format) and return the next sequence
        number; an older format is rewritten in the current one first, under the lock."""
        with open_cassette(self.path) as existing:
            if existing.torn_tail is not None:
                raise TornCassetteError(
                    self.path,
                    f"ends in a torn record ({existing.torn_tail.size} bytes at byte "
                    f"{existing.torn_tail.offset}); repair it first",
                )
            if existing.version < FORMAT_VERSION:
                new_fd = _write_atomically(self.path, _current_records(existing), keep_locked=True)
                os.close(self._fd)
                self._fd = new_fd
            last = max((e.seq for e in existing.entries), default=0)
        self._end = os.lseek(self._fd, 0, os.SEEK_END)
        return last + 1

    def _write_pid(self) -> None:
        with contextlib.suppress(OSError):
            _sidecar(self.path).write_text(f"{os.getpid()}\n", encoding="ascii")

    def next_seq(self) -> int:
        with self._seq_lock:
            seq = self._seq
            self._seq += 1
            return seq

    def _check_same_file(self) -> None:
        if self._gone is None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._gone = CassetteReplacedError(self.path, deleted=True)
            else:
                own = os.fstat(self._fd)
                if (own.st_dev, own.st_ino) != (st.st_dev, st.st_ino):
                    self._gone = CassetteReplacedError(self.path, deleted=False)
        if self._gone is not None:
            raise self._gone

    def _append_bytes(self, data: bytes) -> None:
        """Write `data` whole after the last whole record, or roll the file back to it."""
        fd = self._fd
        try:
            if self._needs_truncate:
                os.ftruncate(fd, self._end)
                self._needs_truncate = False
            os.lseek(fd, self._end, os.SEEK_SET)
            _write_all(fd, data)
            if self.fsync:
                os.fsync(fd)
        except OSError as err:
            try:
                os.ftruncate(fd, self._end)
            except OSError as undo:
                self._needs_truncate = True
                raise CassetteWriteError(self.path, err, rolled_back=False) from undo
            raise CassetteWriteError(self.path, err) from err
        self._end += len(data)

    def append(self, interaction: Interaction) -> None:
        """Append one record. Raises `CassetteReplacedError` when the cassette was deleted or
        replaced since it was opened, `CassetteWriteError` when the write failed (rolled back)."""
        data = encode_interaction(interaction)
        with self._lock:
            if self._fd < 0:
                raise CassetteError(self.path, "the writer is closed")
            self._check_same_file()
            self._append_bytes(data)
            self.records_written += 1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _release(self) -> None:
        if self._fd < 0:
            return
        if lock_holder(self.path) == os.getpid():
            _sidecar(self.path).unlink(missing_ok=True)
        os.close(self._fd)  # releases the flock
        self._fd = -1

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                self._release()

    def __enter__(self) -> CassetteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
