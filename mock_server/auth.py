"""Bearer authentication as Capture does it: `Authorization: Bearer base64(userId:secret)`.

With a users table the secret is checked; without one any well-formed token is accepted and
its userId owns the sessions it creates.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from mock_server.errors import UnauthorizedError

MISSING = "Missing or invalid Bearer credentials"


def decode_bearer(header: str | None) -> tuple[str, str]:
    """Split an Authorization header into (userId, secret); raise UnauthorizedError if malformed."""
    if not header:
        raise UnauthorizedError(MISSING)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError(MISSING)
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise UnauthorizedError(f"{MISSING}: the token is not base64(userId:secret)") from err
    user, sep, secret = decoded.partition(":")
    if not sep or not user or not secret:
        raise UnauthorizedError(f"{MISSING}: the token is not base64(userId:secret)")
    return user, secret


def authenticate(header: str | None, users: dict[str, str] | None) -> str:
    """Return the userId the request acts as."""
    user, secret = decode_bearer(header)
    if users is not None:
        expected = users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            raise UnauthorizedError(MISSING)
    return user


def make_token(user: str, secret: str) -> str:
    """The header value a client sends for `user`/`secret` (used by tests and docs)."""
    return "Bearer " + base64.b64encode(f"{user}:{secret}".encode()).decode()
