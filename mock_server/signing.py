"""The signature of Capture's one-shot ("Core API") URLs: `/{key}/{hash}/{endpoint}?{query}`.

`hash = md5_hex(secret + query)` where `query` is the raw query string exactly as the client
sent it. Official clients order and percent-encode parameters differently (Go sorts keys, PHP
uses `+` for spaces, Node puts `url` last...), so the query is never decoded or reordered before
hashing. Without a users table any hash is accepted. Imports neither aiohttp nor Playwright.
"""

from __future__ import annotations

import hashlib
import hmac

from mock_server.errors import UnauthorizedError

UNKNOWN_KEY = "Unknown API key"
INVALID_HASH = "Invalid hash"


def sign(secret: str, raw_query: str) -> str:
    """The lowercase hex md5 of `secret + raw_query`, as every official SDK computes it."""
    return hashlib.md5((secret + raw_query).encode("utf-8")).hexdigest()


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
