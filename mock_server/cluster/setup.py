"""An instance's life in the cluster: `setup_cluster(app, config)` swaps in the shared registry,
the routing live runner and the shared clock, and adds the middleware, `GET /__admin/cluster` and
a cleanup context that registers the instance, keeps its heartbeat, answers the actions routed to
it, follows the shared clock and ends the sessions of instances whose heartbeat expired.

The heartbeat is renewed every quarter of its TTL (`--heartbeat-ttl`) and its key lives three
quarters of it (two beats may be late before an instance counts as gone); an instance is gone once
its key expired, and the next heartbeat of any live instance (within the last quarter) ends that
instance's sessions with status `error` (billed once, slots freed): within one TTL of its last
beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mock_server.cluster.clock import SharedClock
from mock_server.cluster.registry import ClusterRegistry
from mock_server.cluster.replay import ClusterReplayEngine
from mock_server.cluster.router import ClusterLive, RequestWorker
from mock_server.cluster.store import UNREACHABLE, ClusterStore
from mock_server.config import ClockMode, ServerConfig
from mock_server.routes import oneshot_replay_middleware
from mock_server.state import (
    CLOCK,
    ENGINE_FACTORY,
    LIVE,
    LIVE_FACTORY,
    REGISTRY,
    REGISTRY_FACTORY,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Cluster:
    """This instance in the cluster."""

    store: ClusterStore
    heartbeat_ttl: float
    address: str
    started_at: float = field(default_factory=time.time)
    # The bound port is learnt from the first request when serving on port 0.
    address_known: bool = True

    @property
    def key_ttl(self) -> float:
        """How long one heartbeat keeps the instance alive."""
        return self.heartbeat_ttl * 3 / 4

    @property
    def instance_id(self) -> str:
        return self.store.instance_id

    def info(self) -> dict[str, Any]:
        return {"id": self.instance_id, "address": self.address, "startedAt": self.started_at}

    def learn_address(self, request: web.Request) -> None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if sockname:
            host, port = sockname[:2]
            self.address = f"http://{host}:{port}"
        self.address_known = True


CLUSTER = web.AppKey("capture_cluster", Cluster)


def new_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def setup_cluster(app: web.Application, config: ServerConfig) -> Cluster:
    from mock_server.cluster.web import add_routes, cluster_middleware

    assert config.redis_url is not None
    store = ClusterStore(config.redis_url, new_instance_id())
    address = config.advertise or f"http://{config.host}:{config.port}"
    cluster = app[CLUSTER] = Cluster(
        store,
        config.heartbeat_ttl,
        address,
        address_known=bool(config.advertise) or config.port != 0,
    )
    if config.clock is ClockMode.MANUAL:
        app[CLOCK] = SharedClock(config.manual_clock_start)
    app[REGISTRY_FACTORY] = functools.partial(ClusterRegistry, store=store)
    app[LIVE_FACTORY] = functools.partial(
        ClusterLive, store=store, heartbeat_ttl=config.heartbeat_ttl
    )
    app[ENGINE_FACTORY] = ClusterReplayEngine
    # Around the one-shot replay middleware: its cursors are the cluster's too.
    app.middlewares.insert(app.middlewares.index(oneshot_replay_middleware), cluster_middleware)
    add_routes(app)
    app.cleanup_ctx.append(_membership)
    return cluster


async def _membership(app: web.Application) -> AsyncIterator[None]:
    cluster, registry, clock = app[CLUSTER], app[REGISTRY], app[CLOCK]
    store = cluster.store
    assert isinstance(registry, ClusterRegistry)
    tasks = []
    if isinstance(clock, SharedClock):
        clock.attach(store)
        clock.subscribe(registry.sweep_cluster)
        with contextlib.suppress(*UNREACHABLE):
            await store.clock_init(clock.start)
            await clock.refresh()
        tasks.append(asyncio.create_task(clock.follow(registry.sweep)))
    worker = RequestWorker(store, registry, app[LIVE])
    with contextlib.suppress(*UNREACHABLE):
        await store.heartbeat(cluster.info(), cluster.key_ttl)
    tasks.append(asyncio.create_task(worker.run()))
    tasks.append(asyncio.create_task(_beat(cluster, registry, not clock.manual)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await worker.stop()
        with contextlib.suppress(*UNREACHABLE):
            await registry.close_all()
            await store.leave()
        await store.close()


async def _beat(cluster: Cluster, registry: ClusterRegistry, sweep: bool) -> None:
    """Renew the heartbeat, end the sessions of instances gone, and (real clock) expire what the
    owners have not, every quarter of the TTL."""
    store, ttl = cluster.store, cluster.heartbeat_ttl
    loop = asyncio.get_running_loop()
    # Reaping waits until this instance has reached Redis for a whole TTL: after an outage every
    # heartbeat key may have expired, and the others need that long to renew theirs.
    reachable_since: float | None = None
    while True:
        try:
            await store.heartbeat(cluster.info(), cluster.key_ttl)
            if reachable_since is None:
                reachable_since = loop.time()
            if loop.time() - reachable_since >= ttl:
                for instance_id, info in (await store.instances()).items():
                    if instance_id != cluster.instance_id and not info["alive"]:
                        await registry.reap(instance_id)
            if sweep:
                await registry.sweep_cluster()
        except UNREACHABLE:
            reachable_since = None
            log.warning("Redis at %s is unreachable", store.url)
        except Exception:
            log.exception("the cluster heartbeat failed")
        await asyncio.sleep(ttl / 4)
