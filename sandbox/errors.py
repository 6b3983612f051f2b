"""Errors the emulators answer with, raised deep in the handlers and rendered at the edge."""

from __future__ import annotations

from typing import Any


class SalesforceApiError(Exception):
    """Raised for a Salesforce REST error; renders as the JSON list Salesforce sends."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            error["fields"] = self.fields
        return [error]


def not_found() -> SalesforceApiError:
    return SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")


class WhmcsError(Exception):
    """Raised for a WHMCS business error: HTTP 200 with `result: error` and the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ControlError(Exception):
    """Raised for a bad `/__sandbox/` request; renders as `{"error": {"code", "message"}}`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}
