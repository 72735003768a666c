"""The time budget of one request: an action (a whole batch included) or a one-shot capture.

Playwright timeouts are cut to what is left of it, so a slow step ends as the budget's 504
rather than running past it. Imports nothing of Playwright or aiohttp.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mock_server.errors import ActionTimeoutError

# A Playwright timeout this close to the deadline was the budget's, not the step's own.
_EXHAUSTED_MARGIN_S = 0.05


@dataclass(frozen=True, slots=True)
class Budget:
    """A deadline on the running loop's clock and the budget it was started with."""

    deadline: float
    total_s: float

    @classmethod
    def start(cls, seconds: float) -> Budget:
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def left_ms(self) -> float:
        """What is left, at least 1 ms (Playwright reads 0 as "no timeout")."""
        return max(1.0, (self.deadline - asyncio.get_running_loop().time()) * 1000)

    def ms(self, cap_ms: float | None = None) -> float:
        """A Playwright timeout: what is left, capped at the step's own limit if it has one."""
        left = self.left_ms()
        return left if cap_ms is None else min(left, cap_ms)

    def exhausted(self) -> bool:
        return asyncio.get_running_loop().time() >= self.deadline - _EXHAUSTED_MARGIN_S

    def timeout_error(self, what: str) -> ActionTimeoutError:
        return ActionTimeoutError(f"{what} timed out after {self.total_s:g} s")
