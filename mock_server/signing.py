"""Checking the signature of Capture's one-shot ("Core API") URLs, and of batch request bodies,
against the users table.

The signing rules themselves are `recorder.contract.sign` (the raw query, never decoded or
reordered) and `recorder.contract.body_signature_matches` (HMAC-SHA256 of the raw body, hex or
base64). Without a users table any hash is accepted, and any batch signature that is present.
Imports neither aiohttp nor Playwright.
"""

from __future__ import annotations

import hmac

from mock_server.auth import Users, secrets_of
from mock_server.errors import UnauthorizedError
from recorder.contract import BATCH_SIGNATURE_HEADER, body_signature_matches, sign
from recorder.statuses import INVALID_HASH

__all__ = ["INVALID_HASH", "UNKNOWN_KEY", "sign", "verify_body_signature", "verify_signature"]

UNKNOWN_KEY = "Unknown API key"
BODY_SIGNATURE_RULE = "the HMAC-SHA256 of the raw body keyed with the API secret, hex or base64"
INVALID_BODY_SIGNATURE = f"Invalid {BATCH_SIGNATURE_HEADER}: expected {BODY_SIGNATURE_RULE}"


def verify_signature(users: Users | None, key: str, received: str, raw_query: str) -> None:
    """Raise UnauthorizedError (401) for an unknown key or a hash that does not match.

    `users` maps API key -> its secret(s); a hash made with any of them is accepted. None
    accepts any key and any hash.
    """
    if users is None:
        return
    secrets = secrets_of(users, key)
    if not secrets:
        raise UnauthorizedError(UNKNOWN_KEY)
    given = received.lower().encode()
    if not any([hmac.compare_digest(sign(s, raw_query).encode(), given) for s in secrets]):
        raise UnauthorizedError(INVALID_HASH)


def verify_body_signature(users: Users | None, key: str, received: str | None, body: bytes) -> None:
    """Raise UnauthorizedError (401) for a missing signature, an unknown key, or a signature
    that is not the body's under any of the key's secrets; `users` None accepts any key and any
    signature that is present."""
    if not received:
        raise UnauthorizedError(f"Missing {BATCH_SIGNATURE_HEADER} header: {BODY_SIGNATURE_RULE}")
    if users is None:
        return
    secrets = secrets_of(users, key)
    if not secrets:
        raise UnauthorizedError(UNKNOWN_KEY)
    if not any([body_signature_matches(s, body, received) for s in secrets]):
        raise UnauthorizedError(INVALID_BODY_SIGNATURE)
