"""The replay engine: every decision of what a request gets when cassettes are loaded.

The HTTP routes (and `record --record-mode new_episodes`, in process) call it with the request's
parts and a session from the registry; it answers with one of:

- `Answer`: the recorded answer, session id mapped and time fields from the mock's clock;
- `Miss`: nothing recorded answers it (replay mode): a 502 with the nearest exchanges;
- `GoLive`: run it live (hybrid mode after a miss, a session created live, CDP).

It owns the replay state (which recorded session each replayed session plays, cursors, the
actions applied, where a session diverged) and writes it alone: no handler touches the player.
Replayed action answers count as live ones do (`mock_server.live.counted_action`). In hybrid mode
a session diverges at its first miss: it gets a live page rebuilt from the state-changing actions
replayed so far, and runs live from then on.

CDP cannot be replayed (a recorded `connectUrl` points at a browser that is gone): in hybrid mode
a create with `cdp: true` runs live; in replay mode it answers the contract's 503 "CDP connections
are not available".

Never imports the app, routes, admin or http modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mock_server.clock import Clock
from mock_server.config import Mode
from mock_server.errors import BrowserUnavailableError
from mock_server.live import LiveRunner, counted_action
from mock_server.replay.mcp import McpReplayer
from mock_server.replay.player import Answer, Miss, Player, ReplayState
from mock_server.sessions import Session, SessionOptions, SessionRegistry
from recorder.statuses import CDP_UNAVAILABLE

CDP_HINT = (
    "CDP cannot be replayed (a recorded connectUrl points at a browser that is gone); "
    "serve with --mode hybrid to run CDP sessions live"
)
# Actions that change the page: replayed again to rebuild a page when a session goes live.
STATE_CHANGING = frozenset(
    {
        "goto",
        "click",
        "fill",
        "type",
        "type_text",
        "select",
        "check",
        "press",
        "scroll",
        "hover",
        "move_mouse",
        "drag_mouse",
        "back",
        "forward",
        "reload",
        "batch",
        "wait_for_selector",
    }
)


@dataclass(frozen=True, slots=True)
class GoLive:
    """Run the request live; `source` says why, for the journal (None: an ordinary live one)."""

    source: str | None = None


Outcome = Answer | Miss | GoLive


class ReplayEngine:
    """The replay decisions over one `Player`, in replay or hybrid mode."""

    def __init__(
        self,
        player: Player,
        mode: Mode,
        registry: SessionRegistry,
        clock: Clock,
        live: LiveRunner | None,
    ) -> None:
        if mode is Mode.LIVE:
            raise ValueError("a replay engine replays: mode is replay or hybrid")
        self.player = player
        self.mode = mode
        self.registry = registry
        self.clock = clock
        self.live = live
        # The recorded MCP sessions (`/mcp/v1`), replayed apart: None when none was recorded.
        self.mcp = McpReplayer.of(player.cassettes, served=player.usage.served)

    @property
    def hybrid(self) -> bool:
        return self.mode is Mode.HYBRID

    def close(self) -> None:
        self.player.close()

    def reset(self) -> None:
        self.player.reset()
        if self.mcp is not None:
            self.mcp.reset()

    def misses(self) -> list[dict[str, Any]]:
        return list(self.player.misses) + (self.mcp.misses if self.mcp is not None else [])

    def divergences(self) -> list[dict[str, Any]]:
        return [s.diverged_at for s in self.player.replays.values() if s.diverged_at]

    def _missed(self, miss: Miss, session_id: str | None) -> Miss:
        self.player.record_miss(miss, session_id)
        return miss

    # -- decisions ---------------------------------------------------------------------------

    async def create(
        self, user: str, options: SessionOptions, path: str, query: str, raw: bytes
    ) -> Outcome:
        """A create: the next recorded session with this body, with a fresh id."""
        if options.cdp:
            if self.hybrid:
                return GoLive("live (CDP cannot be replayed)")
            raise BrowserUnavailableError(CDP_UNAVAILABLE, hint=CDP_HINT)
        found = self.player.start_session(self.player.live_key("POST", path, query, raw))
        if isinstance(found, Miss):
            if self.hybrid:
                return GoLive("live (create not recorded)")
            return self._missed(found, None)
        recording, fresh_id = found
        session = await self.registry.create(user, options, fresh_id, with_page=False)
        self.player.begin(fresh_id, recording)
        return self._answer(recording.create, session, recording.recorded_id)

    def session_answer(self, session: Session, method: str, path: str, query: str) -> Answer | None:
        """GET or DELETE of a replayed session: the recorded answer (time fields from the mock's
        clock), or None for the mock's own view of the session (these never miss)."""
        state = self.player.replaying(session.id)
        if state is None:
            return None
        found = self.player.find(self.player.live_key(method, path, query, b"", state), state)
        if isinstance(found, Miss):
            return None
        return self._answer(found, session, state.recording.recorded_id)

    async def action(self, session: Session, path: str, query: str, raw: bytes) -> Outcome:
        """An action on a session: its next recorded answer, or a miss, or live."""
        state = self.player.replaying(session.id)
        if state is None:
            return GoLive()
        key = self.player.live_key("POST", path, query, raw, state)
        found = self.player.find(key, state)
        if isinstance(found, Miss):
            if not self.hybrid:
                return self._missed(found, session.id)
            await self._diverge(session, state, found)
            return GoLive("live (diverged)")
        answer = self._answer(found, session, state.recording.recorded_id)
        action_type = counted_action(raw)
        if action_type is not None:
            ok = answer.status < 400
            session.count_action(action_type.value, ok)
            if ok and self.hybrid and action_type.value in STATE_CHANGING:
                # The request as sent (matching may have dropped ignored fields).
                payload = json.loads(raw).get("payload") or {}
                state.applied.append((action_type.value, dict(payload)))
        return answer

    def oneshot(self, path: str, query: str) -> Outcome:
        """A signed one-shot URL, matched on key, endpoint and query (the hash is ignored)."""
        return self.sessionless("GET", path, query, b"", "one-shot")

    def sessionless(self, method: str, path: str, query: str, body: bytes, what: str) -> Outcome:
        """A request outside any session (a one-shot, a batch), matched among the recorded
        exchanges outside sessions; in hybrid mode a miss goes live."""
        found = self.player.find(self.player.live_key(method, path, query, body), None)
        if isinstance(found, Miss):
            if self.hybrid:
                return GoLive(f"live ({what} not recorded)")
            return self._missed(found, None)
        return self.player.answer(found, session=None, now=self.clock.now())

    # -- helpers -----------------------------------------------------------------------------

    def _answer(self, found: Any, session: Session, recorded_id: str) -> Answer:
        return self.player.answer(
            found, session=session, now=self.clock.now(), recorded_id=recorded_id
        )

    async def _diverge(self, session: Session, state: ReplayState, miss: Miss) -> None:
        """Hybrid mode: the session continues live from its first miss."""
        self.player.record_miss(miss, session.id)
        state.diverged_at = {
            "session": session.id,
            "recordedSession": state.recording.recorded_id,
            "request": miss.description,
            "replayedActions": len(state.applied),
            "closest": miss.closest,
        }
        assert self.live is not None, "hybrid mode runs with a browser"
        await self.live.take_over(session, state.applied)
