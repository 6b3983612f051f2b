"""One small error tree for every external system.

Callers decide on one bit: transient errors are retried with backoff, permanent ones fail the
order at once. Each error carries a stable `code` for the stream and Salesforce, and a message
that is safe to show: never a token, a secret or a request body.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Base of every error a gateway raises."""

    retryable = False

    def __init__(self, code: str, message: str, *, system: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.system = system

    def __reduce__(self) -> tuple[object, ...]:
        # Celery pickles/serialises exceptions across processes; keep the keyword argument.
        return (_rebuild, (type(self), self.code, self.message, self.system))

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TransientError(IntegrationError):
    """Raised when the call may succeed later: timeouts, connection errors, 5xx, rate or lock
    limits, an expired session that re-authentication did not fix."""

    retryable = True


class PermanentError(IntegrationError):
    """Raised when repeating the call cannot help: validation errors, unknown records,
    refused credentials, a business error from the vendor."""


def _rebuild(cls: type[IntegrationError], code: str, message: str, system: str) -> IntegrationError:
    return cls(code, message, system=system)
