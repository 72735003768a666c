"""Bearer authentication as Capture does it: `Authorization: Bearer base64(userId:secret)`.

With a users table the secret is checked; without one any well-formed token is accepted and
its userId owns the sessions it creates.
"""

from __future__ import annotations

import hmac

from mock_server.errors import UnauthorizedError
from recorder.contract import bearer_token, decode_credentials
from recorder.statuses import UNAUTHORIZED as MISSING


def decode_bearer(header: str | None) -> tuple[str, str]:
    """Split an Authorization header into (userId, secret); raise UnauthorizedError if malformed."""
    if not header:
        raise UnauthorizedError(MISSING)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError(MISSING)
    credentials = decode_credentials(token)
    if credentials is None:
        raise UnauthorizedError(f"{MISSING}: the token is not base64(userId:secret)")
    return credentials


def authenticate(header: str | None, users: dict[str, str] | None) -> str:
    """Return the userId the request acts as."""
    user, secret = decode_bearer(header)
    if users is not None:
        expected = users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            raise UnauthorizedError(MISSING)
    return user


# The header value a client sends for `user`/`secret` (used by tests, scripts and docs).
make_token = bearer_token
