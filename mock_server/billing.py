"""Duration billing, as the cloud does it: 1 credit per started minute, charged once when a
session closes or expires.

`durationSeconds` is whole seconds rounded up, and credits are `ceil(durationSeconds / 60)`
with a minimum of 1 (a session that opened started its first minute). The real service's
answer for a zero-second session is unknown; the choice is documented in the README.
"""

from __future__ import annotations

import math


def duration_seconds(started_at: float, ended_at: float) -> int:
    return max(0, math.ceil(round(ended_at - started_at, 6)))


def credits_for(duration: int) -> int:
    return max(1, math.ceil(duration / 60))
