"""The error tree of the emulated API.

Every error a request can meet is a `CaptureError` carrying its HTTP status and the extra
fields of the contract's error body; one middleware (`mock_server.http`) turns it into
`{"success": false, "error": ...}`. Nothing here imports aiohttp or Playwright.
"""

from __future__ import annotations

from typing import Any


class CaptureError(Exception):
    """Base of every error answered to a client. `extra` is merged into the JSON body."""

    status: int = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": self.message, **self.extra}


class BadRequestError(CaptureError):
    """The request or its payload is invalid (400)."""

    status = 400


class UnauthorizedError(CaptureError):
    """Missing or malformed Bearer credentials, or a wrong secret (401)."""

    status = 401


class ForbiddenError(CaptureError):
    """The caller is known but not allowed (403)."""

    status = 403


class NotFoundError(CaptureError):
    """Unknown session, or another user's, or an unknown route (404)."""

    status = 404


class MethodNotAllowedError(CaptureError):
    status = 405


class ConflictError(CaptureError):
    """The request conflicts with the server's state (409)."""

    status = 409


class SessionInactiveError(ConflictError):
    """An action on a closed or expired session (409, with the session snapshot)."""


class PayloadTooLargeError(CaptureError):
    status = 413


class SessionLimitError(CaptureError):
    """The user already has the maximum of active sessions (429)."""

    status = 429


class ActionFailedError(CaptureError):
    """The action ran but failed in the page (navigation error, no element...): 400."""

    status = 400


class PageUnreachableError(CaptureError):
    """A one-shot target URL could not be loaded: DNS, refused connection, TLS... (502)."""

    status = 502


class BrowserUnavailableError(CaptureError):
    """No browser could be found or launched, or it crashed (503)."""

    status = 503


class CaptureBusyError(CaptureError):
    """Every one-shot capture slot is taken and the queue is full or the wait ran out (503)."""

    status = 503


class ActionTimeoutError(CaptureError):
    """The action exceeded its time budget (504)."""

    status = 504
