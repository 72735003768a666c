"""Replay in cluster mode: the replay state that decides answers lives in Redis, so one cassette
replayed through any instance behind a load balancer answers as one instance does.

Every instance loads the same cassettes (the index is local and read-only). What moves is shared:

- the k-th create with a given body gets the k-th recorded session (`INCR` of
  `replay:create:DIGEST`, atomic across instances), hence the same fresh session id;
- which recorded session a fresh id replays (`replay:session:SID`);
- each replayed session's cursors (`replay:cursor:SID`, a hash digest -> count): loaded before a
  request on that session (`ClusterRegistry.lookup`) and the increments added after it
  (`HINCRBY`, in the same round trip as the action counters);
- the cursors of one-shot (signed URL) replays (`replay:others`), loaded before such a request.

Kept per instance: the misses list (`/__admin/unmatched`). Hybrid mode is refused in cluster
mode (a session gone live would hold a page no other instance knows of).
"""

from __future__ import annotations

import hashlib
from typing import Any

from mock_server.cluster.registry import ClusterRegistry
from mock_server.cluster.store import key
from mock_server.replay.engine import Outcome, ReplayEngine
from mock_server.replay.matching import match_key
from mock_server.replay.player import RecordedSession, ReplayState
from mock_server.sessions import SessionOptions


def digest(match: tuple[Any, ...]) -> str:
    return hashlib.sha1(repr(match).encode()).hexdigest()[:20]


class SharedCounts:
    """A replayed session's cursors (match key -> answers given) read from Redis; what this
    instance adds is kept in `added` until pushed."""

    def __init__(self, stored: dict[str, int]) -> None:
        self.stored = stored
        self.added: dict[str, int] = {}

    def __getitem__(self, match: tuple[Any, ...]) -> int:
        name = digest(match)
        return self.stored.get(name, 0) + self.added.get(name, 0)

    def __setitem__(self, match: tuple[Any, ...], value: int) -> None:
        name = digest(match)
        self.added[name] = value - self.stored.get(name, 0)


class ClusterReplayEngine(ReplayEngine):
    """`ReplayEngine` whose create counts, id mappings and cursors are the cluster's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        registry = self.registry
        assert isinstance(registry, ClusterRegistry)
        self.shared = registry
        registry.replay_hook = self
        self._touched: dict[str, SharedCounts] = {}
        self._others: SharedCounts | None = None
        self._started: list[tuple[str, str]] = []
        # Sessions the engine starts get shared cursors, and their mapping is written by create.
        self._begin = self.player.begin
        self.player.begin = self._shared_begin  # type: ignore[method-assign]

    def _shared_begin(self, fresh_id: str, recording: RecordedSession) -> ReplayState:
        state = self._begin(fresh_id, recording)
        state.counts = self._touched[fresh_id] = SharedCounts({})  # type: ignore[assignment]
        self._started.append((fresh_id, recording.recorded_id))
        return state

    @property
    def has_pushes(self) -> bool:
        return bool(self._touched) or bool(self._others and self._others.added)

    async def pull_others(self) -> None:
        """Before a one-shot (signed URL) request: the cluster's cursors of one-shots."""
        stored = await self.shared.store.redis.hgetall(key("replay", "others"))
        counts = SharedCounts({k.decode(): int(v) for k, v in stored.items()})
        self.player.other_counts = counts  # type: ignore[assignment]
        self._others = counts

    async def create(
        self, user: str, options: SessionOptions, path: str, query: str, raw: bytes
    ) -> Outcome:
        redis = self.shared.store.redis
        if not options.cdp:
            player = self.player
            match = match_key(player.live_key("POST", path, query, raw), player.matchers)
            k = await redis.incr(key("replay", "create", digest(match))) - 1
            player.create_counts[match] = k  # read by start_session, before any pause
        outcome = await super().create(user, options, path, query, raw)
        started, self._started = self._started, []
        if started:
            await redis.mset({key("replay", "session", sid): rec for sid, rec in started})
        return outcome

    async def pull(self, session_id: str) -> None:
        """Before a request on `session_id`: its recording and cursors, as the cluster has them."""
        redis = self.shared.store.redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(key("replay", "session", session_id))
            pipe.hgetall(key("replay", "cursor", session_id))
            recorded, cursors = await pipe.execute()
        if recorded is None:
            return
        recording = self.player.sessions.get(recorded.decode())
        if recording is None:
            return
        state = self.player.replays.get(session_id) or self._begin(session_id, recording)
        counts = SharedCounts({k.decode(): int(v) for k, v in cursors.items()})
        state.counts = counts  # type: ignore[assignment]
        self._touched[session_id] = counts

    def push(self, pipe: Any) -> None:
        """After a request: queue on `pipe` the cursor increments made here."""
        touched, self._touched = self._touched, {}
        names = [(key("replay", "cursor", sid), counts) for sid, counts in touched.items()]
        if self._others is not None:
            names.append((key("replay", "others"), self._others))
        for name, counts in names:
            for match_digest, added in counts.added.items():
                if added:
                    pipe.hincrby(name, match_digest, added)
            counts.stored = {
                d: counts.stored.get(d, 0) + counts.added.get(d, 0)
                for d in {*counts.stored, *counts.added}
            }
            counts.added = {}
