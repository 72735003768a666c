"""Capture's error texts that more than one module answers, as the contract words them
(`sessions.openapi.yaml`, `executeAction`). Plain strings: imports nothing.

Kept apart from `recorder.contract` only so that parallel work could add it without touching that
module; it belongs beside the other status texts (to be unified with them).
"""

from __future__ import annotations

# 503 on a route that needs a backing service (Capture's Redis) that cannot be reached.
BACKING_SERVICE_UNAVAILABLE = "Required backing service is unavailable"
# 409 when the session's owner instance is gone or the session is not active.
SESSION_UNAVAILABLE = "Session is unavailable or not active"
