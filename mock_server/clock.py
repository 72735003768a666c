"""The injected clock of the mock server.

`RealClock` follows wall time; `ManualClock` moves only when told (`advance`), so tests drive
TTL, expiry and billing without waiting. Both notify listeners after time moves so the session
registry can expire sessions *on* the advance, not on the next request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

Listener = Callable[[], Awaitable[None]]


class Clock(Protocol):
    manual: bool

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class RealClock:
    manual = False

    def now(self) -> float:
        return time.time()


class ManualClock:
    """Time stands still until `advance` is awaited; listeners run after every advance."""

    manual = True

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._listeners: list[Listener] = []

    def now(self) -> float:
        return self._now

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._now += seconds
        for listener in self._listeners:
            await listener()
        return self._now

    def reset(self, start: float) -> None:
        self._now = float(start)
