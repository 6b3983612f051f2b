"""Logs as one JSON object per line, for the web and the worker alike.

Fields beyond time, level, logger and message come from `extra=` (`order_id`, `task_id`,
`step`, `outcome`, `duration_ms`, ...). gunicorn's access lines become `{"method", "path",
"status", ...}` records (the path without its query string). Anything that looks like a JWT
or a credential in a query string is replaced by `[redacted]`, whatever logged it.

`LOG_FORMAT=text` gives plain lines for a terminal; `LOG_LEVEL` sets the level (INFO).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import settings
from settings import ObservabilitySettings

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_QUERY_SECRET = re.compile(r"((?:ticket|access_token|token|secret|password)=)[^&\s\"']+", re.I)
FIELDS = (
    "order_id", "task_id", "step", "outcome", "duration_ms", "attempt", "run", "code", "reason",
    "status", "method", "path", "remote",
)  # fmt: skip


def redact(text: str) -> str:
    return _QUERY_SECRET.sub(r"\1[redacted]", _JWT.sub("[redacted]", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            line.update(_access_fields(record.args))
            line["message"] = "request"
        else:
            line["message"] = redact(record.getMessage())
        line.update({f: getattr(record, f) for f in FIELDS if hasattr(record, f)})
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines, still redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _access_fields(atoms: dict[str, Any]) -> dict[str, Any]:
    # gunicorn's atoms: m method, U path without query, s status, B bytes, M ms, h remote.
    return {
        "method": atoms.get("m"),
        "path": redact(str(atoms.get("U") or "")),  # a token pasted into a path, say
        "status": int(atoms.get("s") or 0),
        "bytes": atoms.get("B"),
        "duration_ms": atoms.get("M"),
        "remote": atoms.get("h"),
    }


def formatter(observability: ObservabilitySettings | None = None) -> logging.Formatter:
    """The chosen formatter (gunicorn's logging config builds it by this name)."""
    observability = observability or settings.current().observability
    if observability.log_format == "text":
        return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return JsonFormatter()


def configure(observability: ObservabilitySettings) -> None:
    """Send every log record to stderr through the chosen formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(observability))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(observability.log_level)
