"""Record modes beyond "forward everything" (vcrpy's `once` and `new_episodes`), composed from
the recording proxy and the replay engine.

`new_episodes`: a replay server on an internal loopback port answers what the cassette has; the
proxy forwards and appends the rest. Sessions are the unit of an episode: a create that matches a
recorded, not yet replayed session replays that whole session; any other create is forwarded, and
that session's exchanges go to the upstream and are recorded. One-shot requests are per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from mock_server.config import ClockMode, Mode, ServerConfig
from mock_server.matching import SESSION_PATH
from mock_server.serving import listen_on_loopback
from recorder.cassette import WriteMode
from recorder.proxy import ProxyConfig, make_proxy_app
from recorder.records import Interaction

REPLAY_HEADER = "X-Capture-Replay"
PASSED_HEADERS = ("authorization", "content-type", "accept")
DROPPED_ANSWER_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "date", "server"}
)


class EpisodeReplayer:
    """The proxy's `Replayer` for `new_episodes`: asks an in-process replay server first."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = cassette
        self.url = ""
        self.upstream_sessions: set[str] = set()
        self._http: aiohttp.ClientSession | None = None

    async def answer(
        self, method: str, target: str, headers: CIMultiDictProxy[str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        session = SESSION_PATH.match(target.partition("?")[0])
        if session and unquote(session.group(1)) in self.upstream_sessions:
            return None  # a new episode's session lives upstream
        assert self._http is not None, "use EpisodeReplayer.running()"
        sent = {k: v for k, v in headers.items() if k.lower() in PASSED_HEADERS}
        async with self._http.request(
            method, URL(self.url + target, encoded=True), headers=sent, data=body or None
        ) as resp:
            data = await resp.read()
            if resp.headers.get(REPLAY_HEADER) == "miss" and session is None:
                return None  # an unrecorded create or one-shot: forward and record it
            kept = [
                (k, v) for k, v in resp.headers.items() if k.lower() not in DROPPED_ANSWER_HEADERS
            ]
            return resp.status, kept, data

    def forwarded(self, interaction: Interaction) -> None:
        if interaction.session_id:
            self.upstream_sessions.add(interaction.session_id)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[EpisodeReplayer]:
        """Serve the cassette on an internal loopback port while the proxy runs."""
        config = ServerConfig(
            port=0,
            clock=ClockMode.REAL,
            mode=Mode.REPLAY,
            cassettes=(self.cassette,),
            cycle_sessions=False,
        )
        from mock_server.api import make_app

        runner = web.AppRunner(make_app(config), access_log=None)
        self.url = await listen_on_loopback(runner)
        self._http = aiohttp.ClientSession(auto_decompress=False)
        try:
            yield self
        finally:
            await self._http.close()
            await runner.cleanup()


def proxy_config_for(config: ProxyConfig, replayer: EpisodeReplayer | None) -> ProxyConfig:
    """`config` in append mode answering through `replayer` (new episodes only are recorded)."""
    if replayer is None:
        return config
    return replace(config, mode=WriteMode.APPEND, replayer=replayer)


def recording_app(cassette: Path, upstream: str, record_mode: str, exists: bool) -> web.Application:
    """An app for the pytest plugin: the recording proxy for `record_mode` (`all`, `once` on a
    missing cassette, `new_episodes`), with the replayer's lifetime tied to the app's."""
    mode = WriteMode.OVERWRITE if record_mode == "all" or not exists else WriteMode.APPEND
    config = ProxyConfig(cassette=cassette, upstream=upstream, mode=mode, port=0)
    if record_mode != "new_episodes" or not exists:
        return make_proxy_app(config)
    replayer = EpisodeReplayer(cassette)
    app = make_proxy_app(proxy_config_for(config, replayer))

    async def replaying(app: web.Application) -> AsyncIterator[None]:
        async with replayer.running():
            yield

    app.cleanup_ctx.insert(0, replaying)
    return app
