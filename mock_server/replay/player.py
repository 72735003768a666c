"""The cassette player: indexes cassettes and plays them session by session; the decisions of
what to answer from it are `mock_server.replay.engine`'s.

Each replayed create gets a fresh session id mapped to a recorded session (the k-th create with a
given body gets the k-th recorded session with that body, cycling); each replayed session has its
own cursor, so parallel clients never take each other's answers; within a session the n-th
identical request gets the n-th recorded answer (vcrpy's play counts). Time fields of answers come
from the mock's clock. Cassettes are indexed, not loaded: bodies are read when an answer is sent.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_server.config import Exhausted
from mock_server.replay.matching import DEFAULT_MATCHERS, Matcher, differences, match_key
from mock_server.replay.usage import Usage
from mock_server.sessions import Session
from recorder.cassette import Cassette, open_cassette
from recorder.comparison import RequestKey, request_key
from recorder.contract import SESSION_PATH, is_create
from recorder.mcp_tools import is_mcp_path
from recorder.records import IndexEntry, Interaction

# Fields of a `session` object that replay recomputes from the mock's own session.
SESSION_TIME_FIELDS = (
    "status",
    "closeReason",
    "createdAt",
    "startedAt",
    "expiresAt",
    "closedAt",
    "durationSeconds",
    "billedCredits",
)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
    }
)
EXPIRES_IN = re.compile(rb'"expiresInSeconds"\s*:\s*\d+')
LOAD_CACHE_BYTES = 32 * 1024 * 1024
# A fixed namespace: fresh ids are the same in every run of a cassette (byte-identical replays).
ID_NAMESPACE = uuid.UUID("5f0c2a7e-3b1d-4c9a-9a57-0c1e2d3f4a5b")


@dataclass(slots=True)
class Recorded:
    """One recorded exchange, with its match key computed on first use."""

    cassette: Cassette
    entry: IndexEntry
    key: RequestKey | None = None
    match: tuple[Any, ...] | None = None

    def load(self) -> Interaction:
        return self.cassette.load(self.entry)

    @property
    def label(self) -> str:
        return f"{self.cassette.path.name}#{self.entry.seq}"

    @property
    def source(self) -> str:
        return f"replay {self.cassette.path.name}#{self.entry.seq}"


@dataclass(slots=True)
class RecordedSession:
    recorded_id: str
    create: Recorded
    exchanges: list[Recorded]
    # match key -> the exchanges with that key, in recorded order; built on first use
    by_match: dict[tuple[Any, ...], list[Recorded]] | None = None


@dataclass(slots=True)
class ReplayState:
    """A replayed session: its recording, its cursors and, once diverged, where."""

    fresh_id: str
    recording: RecordedSession
    counts: dict[tuple[Any, ...], int] = field(default_factory=lambda: defaultdict(int))
    applied: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    diverged_at: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What replay answers: status, headers and body bytes, and the exchange it came from."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source: str
    duration: float


@dataclass(frozen=True, slots=True)
class Miss:
    """A request no recording answers, with the nearest recorded exchanges and their differences."""

    description: str
    cassettes: str
    closest: list[dict[str, Any]]
    reason: str = "not recorded"

    def body(self) -> dict[str, Any]:
        near = "; ".join(
            f"{c['exchange']} ({', '.join(c['differences'][:3]) or 'identical'})"
            for c in self.closest
        )
        error = f"{self.description} was {self.reason} in {self.cassettes}"
        error += f"; closest: {near}" if near else "; nothing close was recorded"
        return {"success": False, "error": error, "closest": self.closest}


class Player:
    """Every loaded cassette, indexed for replay, and the state of the sessions being replayed."""

    def __init__(
        self,
        paths: tuple[Path, ...],
        *,
        matchers: tuple[Matcher, ...] = DEFAULT_MATCHERS,
        ignore: tuple[str, ...] = (),
        exhausted: Exhausted = Exhausted.REPEAT,
        cycle_sessions: bool = True,
    ) -> None:
        self.cycle_sessions = cycle_sessions
        self.matchers = matchers
        self.ignore = ignore
        self.exhausted = exhausted
        self.cassettes: list[Cassette] = []
        self.sessions: dict[str, RecordedSession] = {}
        self.creates: dict[tuple[Any, ...], list[RecordedSession]] = {}
        self.others: list[Recorded] = []
        self.create_counts: dict[tuple[Any, ...], int] = defaultdict(int)
        self.other_counts: dict[tuple[Any, ...], int] = defaultdict(int)
        self.replays: dict[str, ReplayState] = {}
        self.misses: list[dict[str, Any]] = []
        self._others_by_match: dict[tuple[Any, ...], list[Recorded]] | None = None
        self._loaded: OrderedDict[tuple[int, int], tuple[Interaction, int]] = OrderedDict()
        self._loaded_bytes = 0
        try:
            for path in paths:
                self.cassettes.append(open_cassette(path))
        except BaseException:
            self.close()
            raise
        self.usage = Usage(self.cassettes)
        self._index()

    @property
    def names(self) -> str:
        return ", ".join(c.path.name for c in self.cassettes) or "no cassette"

    def _index(self) -> None:
        by_session: dict[str, list[Recorded]] = defaultdict(list)
        for cassette in self.cassettes:
            for entry in cassette.entries:
                item = Recorded(cassette, entry)
                creates = is_create(entry.method, entry.path)
                if creates and entry.status == 201 and entry.session_id:
                    self.sessions[entry.session_id] = RecordedSession(entry.session_id, item, [])
                elif entry.session_id and SESSION_PATH.match(entry.path):
                    by_session[entry.session_id].append(item)
                elif not creates and not is_mcp_path(entry.path):  # MCP: replay.mcp's
                    self.others.append(item)
        for sid, items in by_session.items():
            if sid in self.sessions:
                self.sessions[sid].exchanges = items
            else:  # e.g. an unknown-session 404: answered by the emulator's own rules
                self.others.extend(items)
        for recording in self.sessions.values():
            key = self._key_of(recording.create)
            self.creates.setdefault(match_key(key, self.matchers), []).append(recording)

    def _key_of(self, item: Recorded) -> RequestKey:
        if item.key is None:
            req = self.load(item).request
            item.key = request_key(req.method, req.path, req.query, req.body, ignore=self.ignore)
        return item.key

    def _match_of(self, item: Recorded) -> tuple[Any, ...]:
        if item.match is None:
            item.match = match_key(self._key_of(item), self.matchers)
        return item.match

    def _grouped(self, pool: list[Recorded]) -> dict[tuple[Any, ...], list[Recorded]]:
        groups: dict[tuple[Any, ...], list[Recorded]] = defaultdict(list)
        for item in pool:
            groups[self._match_of(item)].append(item)
        return dict(groups)

    def load(self, item: Recorded) -> Interaction:
        """A recorded exchange, from a small cache bounded in bytes (bodies stay on disk)."""
        cache_key = (id(item.cassette), item.entry.offset)
        cached = self._loaded.get(cache_key)
        if cached is not None:
            self._loaded.move_to_end(cache_key)
            return cached[0]
        found = item.load()
        size = item.entry.length
        if size <= LOAD_CACHE_BYTES // 8:
            self._loaded[cache_key] = (found, size)
            self._loaded_bytes += size
            while self._loaded_bytes > LOAD_CACHE_BYTES:
                _, (_, old_size) = self._loaded.popitem(last=False)
                self._loaded_bytes -= old_size
        return found

    def close(self) -> None:
        for cassette in self.cassettes:
            cassette.close()

    def reset(self) -> None:
        self._loaded.clear()
        self._loaded_bytes = 0
        self.create_counts.clear()
        self.other_counts.clear()
        self.replays.clear()
        self.misses.clear()
        self.usage.reset()

    # -- replayed sessions ---------------------------------------------------------------

    def begin(self, fresh_id: str, recording: RecordedSession) -> ReplayState:
        state = self.replays[fresh_id] = ReplayState(fresh_id, recording)
        return state

    def replaying(self, session_id: str) -> ReplayState | None:
        """The replay state of a session still being replayed (not diverged), else None."""
        state = self.replays.get(session_id)
        return state if state is not None and state.diverged_at is None else None

    # -- lookups -------------------------------------------------------------------------

    def live_key(
        self, method: str, path: str, query: str, body: bytes, state: ReplayState | None = None
    ) -> RequestKey:
        ids = {state.fresh_id: state.recording.recorded_id} if state else None
        return request_key(method, path, query, body, session_ids=ids, ignore=self.ignore)

    def start_session(self, key: RequestKey) -> tuple[RecordedSession, str] | Miss:
        """The recorded session the next create with this body replays, and its fresh id."""
        mk = match_key(key, self.matchers)
        candidates = self.creates.get(mk)
        if not candidates:
            return self._miss(key, [r.create for r in self.sessions.values()])
        k = self.create_counts[mk]
        if k >= len(candidates) and not self.cycle_sessions:
            return self._miss(
                key,
                [r.create for r in candidates],
                reason=f"asked {k + 1} times but recorded only {len(candidates)} times",
            )
        self.create_counts[mk] += 1
        recording = candidates[k % len(candidates)]
        fresh = f"sess_{uuid.uuid5(ID_NAMESPACE, f'{recording.recorded_id}#{k}')}"
        return recording, fresh

    def find(self, key: RequestKey, state: ReplayState | None) -> Recorded | Miss:
        """The recorded answer for the n-th occurrence of `key` (in a session, or globally)."""
        if state is not None:
            pool, counts = state.recording.exchanges, state.counts
            if state.recording.by_match is None:
                state.recording.by_match = self._grouped(pool)
            groups = state.recording.by_match
        else:
            pool, counts = self.others, self.other_counts
            if self._others_by_match is None:
                self._others_by_match = self._grouped(pool)
            groups = self._others_by_match
        mk = match_key(key, self.matchers)
        hits = groups.get(mk)
        if not hits:
            return self._miss(key, pool, state=state)
        n = counts[mk]
        counts[mk] += 1
        if n >= len(hits):
            if self.exhausted is Exhausted.ERROR:
                return self._miss(
                    key,
                    hits,
                    state=state,
                    reason=f"asked {n + 1} times but recorded only {len(hits)} times",
                )
            return hits[-1]
        return hits[n]

    def _miss(
        self,
        key: RequestKey,
        pool: list[Recorded],
        *,
        reason: str = "not recorded",
        state: ReplayState | None = None,
    ) -> Miss:
        ranked = []
        for item in pool:
            diffs = differences(self._key_of(item), key, self.matchers)
            ranked.append((len(diffs), item.entry.seq, item, diffs))
        ranked.sort(key=lambda r: (r[0], r[1]))
        closest = [
            {
                "exchange": item.label,
                "cassette": str(item.cassette.path),
                "seq": item.entry.seq,
                "method": item.entry.method,
                "path": item.entry.path,
                "actionType": item.entry.action_type,
                "differences": diffs,
            }
            for _, _, item, diffs in ranked[:3]
        ]
        asked = key.describe()
        if state is not None:  # say what the client asked, with its own session id
            asked = asked.replace(state.recording.recorded_id, state.fresh_id)
        return Miss(asked, self.names, closest, reason)

    def record_miss(self, miss: Miss, session_id: str | None) -> None:
        self.misses.append({"session": session_id, **miss.body()})

    # -- answers -------------------------------------------------------------------------

    def answer(
        self,
        item: Recorded,
        *,
        session: Session | None,
        now: float,
        recorded_id: str | None = None,
    ) -> Answer:
        """The recorded answer with the session id mapped and the time fields recomputed."""
        interaction = self.load(item)
        self.usage.served(item.cassette, item.entry)
        resp = interaction.response
        body = resp.body
        if session is not None and recorded_id:
            body = body.replace(recorded_id.encode(), session.id.encode())
        if session is not None:
            body = overlay_times(body, session, now)
        headers = tuple((k, v) for k, v in resp.headers if k.lower() not in HOP_BY_HOP)
        return Answer(resp.status, headers, body, item.source, interaction.duration)


def overlay_times(body: bytes, session: Session, now: float) -> bytes:
    """Recompute `expiresInSeconds` and the session's time fields from the mock's clock.
    A body that is not a JSON object is returned unchanged (byte for byte)."""
    if not body.startswith(b"{"):
        return body
    if b'"session"' not in body:
        # The common action answer: one number to rewrite, the rest stays byte for byte.
        found = EXPIRES_IN.findall(body)
        if len(found) == 1:
            return EXPIRES_IN.sub(b'"expiresInSeconds":%d' % session.expires_in(now), body)
        if not found:
            return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    if "expiresInSeconds" in data:
        data["expiresInSeconds"] = session.expires_in(now)
    nested = data.get("session")
    if isinstance(nested, dict):
        snapshot = session.snapshot()
        for name in SESSION_TIME_FIELDS:
            if name in nested:
                nested[name] = snapshot[name]
        if "maxTtlSeconds" in nested:
            nested["maxTtlSeconds"] = session.options.max_ttl_seconds
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
