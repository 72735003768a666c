"""Transitional: the app moved to `mock_server.app` (and `http`, `routes`, `admin`, `state`)."""

from mock_server.app import make_app
from mock_server.http import error_middleware

__all__ = ["error_middleware", "make_app"]
