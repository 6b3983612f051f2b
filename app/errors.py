"""Errors as JSON: `{"error": {"code": "...", "message": "..."}}`, and never a stack trace.

Views raise `ApiError` (or let a werkzeug `HTTPException` through); this module turns every
failure into the JSON body and status the contract promises. Unexpected exceptions are logged
with their trace and answered with a bare 500.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from integrations import TransientError

from .metrics import AUTH_FAILURES

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by views to answer `status` with a JSON error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").upper().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        if exc.status in (401, 403):
            AUTH_FAILURES.labels(exc.code).inc()
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = error_response(exc.code or 500, _http_code(exc), exc.description or "")
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(redis.exceptions.RedisError)
    def redis_down(exc: redis.exceptions.RedisError) -> Response:
        log.warning("redis unavailable: %r", exc)
        return error_response(503, "REDIS_UNAVAILABLE", "the event store is unavailable")

    @app.errorhandler(TransientError)
    def dependency_down(exc: TransientError) -> Response:
        log.warning("dependency unavailable: %s", exc)
        return error_response(503, exc.code, f"{exc.system} is unavailable, try again")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "INTERNAL_ERROR", "internal error")
