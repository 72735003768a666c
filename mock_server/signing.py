"""Checking the signature of Capture's one-shot ("Core API") URLs against the users table.

The signing rule itself is `recorder.contract.sign` (the raw query, never decoded or reordered).
Without a users table any hash is accepted. Imports neither aiohttp nor Playwright.
"""

from __future__ import annotations

import hmac

from mock_server.errors import UnauthorizedError
from recorder.contract import sign
from recorder.statuses import INVALID_HASH

__all__ = ["INVALID_HASH", "UNKNOWN_KEY", "sign", "verify_signature"]

UNKNOWN_KEY = "Unknown API key"


def verify_signature(users: dict[str, str] | None, key: str, received: str, raw_query: str) -> None:
    """Raise UnauthorizedError (401) for an unknown key or a hash that does not match.

    `users` maps API key -> secret; None accepts any key and any hash.
    """
    if users is None:
        return
    secret = users.get(key)
    if secret is None:
        raise UnauthorizedError(UNKNOWN_KEY)
    expected = sign(secret, raw_query)
    if not hmac.compare_digest(expected.encode(), received.lower().encode()):
        raise UnauthorizedError(INVALID_HASH)
