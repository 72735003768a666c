"""The manual clock shared by the instances of a cluster: its time lives in Redis.

`POST /__admin/clock/advance` on any instance moves it for all: the advance is one `INCRBYFLOAT`
and a publish on `clock:advanced`; every instance re-reads the time at the start of each request
(so an answer never runs on a stale clock) and, on the publish, at once (so its own sessions due
expire and their pages are freed without waiting for a request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mock_server.clock import ManualClock
from mock_server.cluster.store import UNREACHABLE, ClusterStore

log = logging.getLogger(__name__)


class SharedClock(ManualClock):
    """A `ManualClock` whose time is the cluster's (`attach` it to the store before use)."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.start = float(start)
        self.store: ClusterStore | None = None

    def attach(self, store: ClusterStore) -> None:
        self.store = store

    async def refresh(self) -> float:
        assert self.store is not None
        self._now = await self.store.clock_now(self._now)
        return self._now

    def catch_up(self, now: float) -> None:
        """Another instance read the clock at `now` (it only moves forward): never lag behind."""
        self._now = max(self._now, now)

    async def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        assert self.store is not None
        self._now = await self.store.clock_advance(seconds, self.start)
        for listener in self._listeners:
            await listener()
        return self._now

    async def reset_shared(self) -> None:
        assert self.store is not None
        self._now = self.start
        await self.store.clock_set(self.start)

    async def follow(self, moved: Callable[[], Awaitable[None]]) -> None:
        """Run `moved` each time another instance moves the clock (until cancelled)."""
        assert self.store is not None
        while True:
            pubsub = self.store.blocking.pubsub()
            try:
                await pubsub.subscribe(self.store.clock_channel())
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self.refresh()
                        await moved()
            except UNREACHABLE:
                await asyncio.sleep(0.5)  # Redis is down: subscribe again shortly
            finally:
                await pubsub.aclose()
