"""Timestamps in the formats each emulated system writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def salesforce_datetime() -> str:
    """Now as Salesforce renders a DateTime field: `2026-01-15T10:00:00.000+0000`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def salesforce_date() -> str:
    """Today as a Salesforce Date field: `2026-01-15`."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def whmcs_datetime() -> str:
    """Now as WHMCS renders dates in API answers: `2026-01-15 10:00:00`."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def whmcs_date() -> str:
    """Today as WHMCS renders a plain date: `2026-01-15`."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def iso_timestamp() -> str:
    """Now in ISO 8601 with milliseconds, for the control API's write log."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
