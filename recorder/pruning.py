"""Pruning: a cassette rewritten without some of its exchanges (`prune --drop`, and the pytest
plugin's `--capture-prune` of the exchanges no test used).

The kept records are copied byte for byte, header included (the format stays the file's own), and
keep their sequence numbers: nothing is renumbered, so `#seq` references (miss messages, reports,
a git diff) still point at the same exchanges and the diff shows only the removed blocks. Replay
never needs the numbers to be contiguous. Dropping the create of a session whose other exchanges
are kept is refused (they could never be replayed), and so is dropping the `initialize` of an MCP
session whose other exchanges are kept.

The rewrite goes through a temp file and `os.replace` while holding the writer's lock: a cassette
a recorder is writing is refused (`CassetteLockedError`), and so is a damaged or torn one (repair
it first). Must not import `mock_server`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from recorder.cassette import holding_lock, write_atomically
from recorder.contract import is_create
from recorder.errors import CassetteError, TornCassetteError
from recorder.mcp_tools import is_mcp_path, mcp_session_of, messages_in
from recorder.reader import Cassette, open_cassette


@dataclass(frozen=True, slots=True)
class PruneReport:
    path: Path
    dropped: tuple[int, ...]  # the sequence numbers removed
    kept: int


def _mcp_orphans(cassette: Cassette, drop: set[int]) -> str | None:
    """Why dropping `drop` would leave exchanges of an MCP session without its `initialize`
    (replay plays a recorded MCP session from it), if it would."""
    sessions: dict[str, list[int]] = {}
    initialize: dict[str, int] = {}
    for entry in cassette.entries:
        if not is_mcp_path(entry.path):
            continue
        item = cassette.load(entry)
        sid = mcp_session_of(item.request.headers, item.response.headers)
        if sid is None:
            continue
        sessions.setdefault(sid, []).append(entry.seq)
        if any(m.get("method") == "initialize" for m in messages_in(item.request.body)):
            initialize.setdefault(sid, entry.seq)
    for sid, seq in initialize.items():
        kept = [s for s in sessions[sid] if s not in drop and s != seq]
        if seq in drop and kept:
            listed = ", ".join(f"#{s}" for s in kept)
            return (
                f"#{seq} initializes MCP session {sid}, whose exchanges {listed} are kept; "
                "drop them too or keep the initialize"
            )
    return None


def _orphans(cassette: Cassette, drop: set[int]) -> str | None:
    """Why dropping `drop` would leave exchanges of a session without its create (or of an MCP
    session without its initialize), if it would."""
    for entry in cassette.entries:
        creates = is_create(entry.method, entry.path) and entry.status == 201
        if entry.seq not in drop or not creates or not entry.session_id:
            continue
        kept = [
            e.seq
            for e in cassette.entries
            if e.session_id == entry.session_id and e.seq not in drop and e is not entry
        ]
        if kept:
            listed = ", ".join(f"#{s}" for s in kept)
            return (
                f"#{entry.seq} creates {entry.session_id}, whose exchanges {listed} are kept; "
                "drop them too or keep the create"
            )
    return _mcp_orphans(cassette, drop)


def prune_cassette(
    path: str | os.PathLike[str],
    drop: Collection[int],
    *,
    expect: tuple[tuple[int, int], ...] | None = None,
) -> PruneReport:
    """Rewrite `path` without the exchanges whose sequence numbers are in `drop` (all of which
    must be in it). With `expect` (every record's sequence number and offset, as read earlier),
    a cassette that changed since is refused. Raises `CassetteError` (unknown numbers, an
    orphaned session, a damaged, torn or changed cassette) and `CassetteLockedError` while a
    recorder writes it."""
    p = Path(path)
    wanted = set(drop)
    with holding_lock(p), open_cassette(p) as cassette:
        if cassette.torn_tail is not None:
            raise TornCassetteError(
                p, f"ends in a torn record ({cassette.torn_tail.size} bytes); repair it first"
            )
        if expect is not None and expect != tuple((e.seq, e.offset) for e in cassette.entries):
            raise CassetteError(p, "changed since it was replayed; not pruned")
        present = {e.seq for e in cassette.entries}
        missing = sorted(wanted - present)
        if missing:
            listed = ", ".join(f"#{s}" for s in missing)
            raise CassetteError(p, f"has no exchange {listed} (it has {len(present)} exchanges)")
        problem = _orphans(cassette, wanted)
        if problem is not None:
            raise CassetteError(p, f"cannot prune: {problem}")
        if wanted:
            write_atomically(p, _kept_records(cassette, wanted))
        return PruneReport(p, tuple(sorted(wanted)), len(present) - len(wanted))


def _kept_records(cassette: Cassette, drop: set[int]) -> Iterator[bytes]:
    yield cassette.raw_header()
    for entry, data in zip(cassette.entries, cassette.raw_records(), strict=True):
        if entry.seq not in drop:
            yield data
