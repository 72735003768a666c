"""Bearer authentication as Capture does it: `Authorization: Bearer base64(userId:secret)`.

With a users table the secret is checked; without one any well-formed token is accepted and
its userId owns the sessions it creates. A user may have several secrets (Capture: "the user's
primary secret or one of their API secrets"): any of them authenticates, and the sessions belong
to the user whichever secret created them.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from mock_server.errors import UnauthorizedError
from recorder.contract import bearer_token, decode_credentials
from recorder.statuses import UNAUTHORIZED as MISSING

# userId -> its secret, or its secrets (`read_users_file` gives tuples; a plain string is one).
Users = Mapping[str, str | tuple[str, ...]]


def secrets_of(users: Users, user: str) -> tuple[str, ...]:
    """The secrets of `user` (none for an unknown user); a lone string is one secret, never
    a collection of characters."""
    found = users.get(user, ())
    return (found,) if isinstance(found, str) else tuple(found)


def knows_secret(users: Users, user: str, secret: str) -> bool:
    """True when `secret` is one of `user`'s secrets (compared in constant time, each one)."""
    given = secret.encode()
    matches = [hmac.compare_digest(s.encode(), given) for s in secrets_of(users, user)]
    return any(matches)


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


def authenticate(header: str | None, users: Users | None) -> str:
    """Return the userId the request acts as."""
    user, secret = decode_bearer(header)
    if users is not None and not knows_secret(users, user, secret):
        raise UnauthorizedError(MISSING)
    return user


# The header value a client sends for `user`/`secret` (used by tests, scripts and docs).
make_token = bearer_token
