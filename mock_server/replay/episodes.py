"""Recording with replay: the proxy app for a record plan (`mock_server.config.plan_recording`
decides it, for `record` and the pytest plugin alike) and the in-process replayer that
`new_episodes` answers from.

`EpisodeReplayer` is the recording proxy's `Replayer` for `new_episodes`: the replay engine in
the same process (no second server). Sessions are the unit of an episode: a create that matches
a recorded, not yet replayed session replays that whole session; any other create is forwarded,
and that session's exchanges go upstream and are recorded. One-shot requests are per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from multidict import CIMultiDictProxy

from mock_server.auth import authenticate
from mock_server.clock import RealClock
from mock_server.config import DEFAULT_TTL_SECONDS, Mode, RecordPlan, ServerConfig
from mock_server.errors import CaptureError, MethodNotAllowedError
from mock_server.json_body import json_bytes
from mock_server.live import inactive_error
from mock_server.replay.engine import GoLive, Outcome, ReplayEngine
from mock_server.replay.loading import load_player
from mock_server.replay.player import Miss
from mock_server.sessions import SessionRegistry, parse_create_request
from recorder.cassette import WriteMode
from recorder.contract import is_action_path, is_create, session_id_from_path, signed_parts
from recorder.proxy import ProxyConfig, make_proxy_app
from recorder.records import Interaction

REPLAY_HEADER = "X-Capture-Replay"
_JSON = ("Content-Type", "application/json; charset=utf-8")
Answered = tuple[int, list[tuple[str, str]], bytes]


class EpisodeReplayer:
    """Answers what the cassette already has, in process; None lets the proxy forward."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = cassette
        self.upstream_sessions: set[str] = set()
        self._engine: ReplayEngine | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[EpisodeReplayer]:
        """Keep the cassette open for replay while the proxy runs."""
        config = ServerConfig(mode=Mode.REPLAY, cassettes=(self.cassette,), cycle_sessions=False)
        clock = RealClock()
        registry = SessionRegistry(clock, max_sessions=config.max_sessions)
        player = load_player(config, config.cassettes)
        self._engine = ReplayEngine(player, Mode.REPLAY, registry, clock, live=None)
        try:
            yield self
        finally:
            self._engine = None
            player.close()

    def forwarded(self, interaction: Interaction) -> None:
        if interaction.session_id:
            self.upstream_sessions.add(interaction.session_id)

    async def answer(
        self, method: str, target: str, headers: CIMultiDictProxy[str], body: bytes
    ) -> Answered | None:
        engine = self._engine
        assert engine is not None, "use EpisodeReplayer.running()"
        path, _, query = target.partition("?")
        try:
            outcome = await self._decide(engine, method, path, query, headers, body)
        except CaptureError as err:
            return err.status, [_JSON], json_bytes(err.body())
        if outcome is None or isinstance(outcome, tuple | GoLive):
            return outcome if isinstance(outcome, tuple) else None
        if isinstance(outcome, Miss):
            return 502, [_JSON, (REPLAY_HEADER, "miss")], json_bytes(outcome.body())
        return outcome.status, [*outcome.headers, (REPLAY_HEADER, "hit")], outcome.body

    async def _decide(
        self,
        engine: ReplayEngine,
        method: str,
        path: str,
        query: str,
        headers: CIMultiDictProxy[str],
        body: bytes,
    ) -> Outcome | Answered | None:
        if is_create(method, path):
            user = authenticate(headers.get("Authorization"), None)
            options = parse_create_request(body, DEFAULT_TTL_SECONDS)
            outcome = await engine.create(user, options, path, query, body)
            return None if isinstance(outcome, Miss) else outcome  # a new episode
        sid = session_id_from_path(path)
        if sid is not None:
            if sid in self.upstream_sessions:
                return None  # a new episode's session lives upstream
            session = engine.registry.get(sid, authenticate(headers.get("Authorization"), None))
            if is_action_path(path):
                if method.upper() != "POST":
                    raise MethodNotAllowedError(f"Method {method} not allowed on {path}")
                if not session.active:
                    raise inactive_error(session)
                return await engine.action(session, path, query, body)
            if method.upper() == "DELETE":
                await engine.registry.close(session)
            elif method.upper() != "GET":
                raise MethodNotAllowedError(f"Method {method} not allowed on {path}")
            found = engine.session_answer(session, method.upper(), path, query)
            if found is not None:
                return found
            return 200, [_JSON], json_bytes({"success": True, "session": session.snapshot()})
        if method.upper() == "GET" and signed_parts(path) is not None:
            outcome = engine.oneshot(path, query)
            return None if isinstance(outcome, Miss) else outcome
        return None


def proxy_config_for(config: ProxyConfig, replayer: EpisodeReplayer | None) -> ProxyConfig:
    """`config` in append mode answering through `replayer` (new episodes only are recorded)."""
    if replayer is None:
        return config
    return replace(config, mode=WriteMode.APPEND, replayer=replayer)


def recording_app(
    cassette: Path, upstream: str, plan: RecordPlan, *, write: WriteMode = WriteMode.OVERWRITE
) -> web.Application:
    """The recording proxy for `plan` (RECORD or EPISODES), the replayer's lifetime tied to the
    app's (the pytest plugin's recording server)."""
    config = ProxyConfig(cassette=cassette, upstream=upstream, mode=write, port=0)
    if plan is not RecordPlan.EPISODES:
        return make_proxy_app(config)
    replayer = EpisodeReplayer(cassette)
    app = make_proxy_app(proxy_config_for(config, replayer))

    async def replaying(app: web.Application) -> AsyncIterator[None]:
        async with replayer.running():
            yield

    app.cleanup_ctx.insert(0, replaying)
    return app
