"""The emulated Capture API as one aiohttp application: `make_app(config)`.

`app.cleanup_ctx` owns the long-lived resources: the session registry and its expiry task, the
live runner, the replay engine over the loaded cassettes, and the browser (its manager launches
Chromium lazily, on the first session or at warm-up, and is closed here). Each is stored under
its own typed key (`mock_server.state`). Cassettes are opened in `make_app` so that a bad one
fails at once, and closed by the same cleanup.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from mock_server.admin import add_routes as add_admin_routes
from mock_server.admin import guard_middleware
from mock_server.browser import BrowserManager, SessionPage, find_browser
from mock_server.cdp import setup_cdp
from mock_server.clock import Clock, ManualClock, RealClock
from mock_server.config import ClockMode, Mode, ServerConfig
from mock_server.fault_rules import FaultBook
from mock_server.faults import add_fault_routes, fault_middleware
from mock_server.field_warnings import (
    WARNINGS,
    WarningLog,
    oneshot_screening_middleware,
    warnings_middleware,
)
from mock_server.http import error_middleware, journal_middleware
from mock_server.live import LiveRunner
from mock_server.mcp import setup_mcp
from mock_server.oneshot import CaptureSlots, setup_oneshot
from mock_server.oneshot.batch import BatchRunner, setup_batches
from mock_server.oneshot.cache import OneshotCache
from mock_server.oneshot.storage import ObjectStore, add_storage_routes
from mock_server.replay.engine import ReplayEngine
from mock_server.replay.loading import load_player
from mock_server.replay.player import Player
from mock_server.routes import add_routes, oneshot_replay_middleware
from mock_server.sessions import SessionRegistry
from mock_server.state import (
    BATCHES,
    BROWSER,
    CLOCK,
    CONFIG,
    ENGINE_FACTORY,
    FAULTS,
    JOURNAL,
    LIVE,
    LIVE_FACTORY,
    OBJECT_STORE,
    ONESHOT_CACHE,
    REGISTRY,
    REGISTRY_FACTORY,
    REPLAY,
    Journal,
    ReplaySlot,
)


def make_clock(config: ServerConfig) -> Clock:
    if config.clock == ClockMode.MANUAL:
        return ManualClock(config.manual_clock_start)
    return RealClock()


def make_app(config: ServerConfig) -> web.Application:
    app = web.Application(
        middlewares=[
            warnings_middleware,
            journal_middleware,
            error_middleware,
            guard_middleware,
            fault_middleware,
            oneshot_screening_middleware,
            oneshot_replay_middleware,
        ],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[CLOCK] = make_clock(config)
    app[JOURNAL] = Journal()
    app[WARNINGS] = WarningLog()
    app[REPLAY] = ReplaySlot()
    app[FAULTS] = FaultBook(config.fault_seed, config.faults)
    app[BROWSER] = BrowserManager(
        find_browser(config.browser),
        pool_size=config.context_pool,
        allow_file_urls=config.allow_file_urls,
        max_live=config.max_sessions,
        endpoint=config.browser_endpoint,
    )
    player = load_player(config, config.cassettes) if config.cassettes else None
    app.cleanup_ctx.append(_resources(config, player))
    add_routes(app)
    slots = CaptureSlots(config.oneshot_slots, config.oneshot_queue, config.oneshot_wait)
    cache = app[ONESHOT_CACHE] = OneshotCache(
        app[CLOCK], config.oneshot_cache_ttl, config.oneshot_cache_bytes
    )
    objects = app[OBJECT_STORE] = ObjectStore(config.storage_dir)
    setup_oneshot(app, app[BROWSER], config.users, slots=slots, cache=cache, objects=objects)
    add_storage_routes(app, objects)
    app[BATCHES] = BatchRunner(
        app[BROWSER],
        slots,
        objects,
        app[CLOCK],
        users=config.users,
        max_items=config.batch_max,
        allowed_hosts=config.allow_webhook_hosts,
    )
    setup_batches(app, app[BATCHES])
    add_admin_routes(app)
    add_fault_routes(app)
    setup_cdp(app)
    setup_mcp(app)
    if config.redis_url:
        from mock_server.cluster.setup import setup_cluster  # the `cluster` extra, when asked

        setup_cluster(app, config)
    return app


def _resources(
    config: ServerConfig, player: Player | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        clock, browser = app[CLOCK], app[BROWSER]

        async def open_page(session_id: str, cdp: bool) -> SessionPage:
            return await browser.open_session_page(session_id, cdp=cdp)

        registry = app[REGISTRY] = app.get(REGISTRY_FACTORY, SessionRegistry)(
            clock,
            max_sessions=config.max_sessions,
            max_total=config.max_total_sessions,
            keep_closed=config.keep_closed,
            opener=open_page,
        )
        make_live = app.get(LIVE_FACTORY, LiveRunner)
        live = app[LIVE] = make_live(browser, registry, clock, config.action_timeout)
        if player is not None and config.mode is not Mode.LIVE:
            make_engine = app.get(ENGINE_FACTORY, ReplayEngine)
            app[REPLAY].engine = make_engine(player, config.mode, registry, clock, live)
        elif player is not None:
            player.close()
        if isinstance(clock, ManualClock):
            clock.subscribe(registry.sweep)
        expiry = None if clock.manual else asyncio.create_task(registry.run_expiry())
        warm = asyncio.create_task(browser.warm_up()) if config.warm_browser else None
        app[OBJECT_STORE].open()
        try:
            yield
        finally:
            await app[BATCHES].close()
            app[OBJECT_STORE].close()
            for task in (expiry, warm):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            await registry.close_all()
            await browser.close()
            engine = app[REPLAY].engine
            if engine is not None:
                engine.close()

    return resources
