"""JSON log lines with the fields operators filter on, and nothing secret in them."""

from __future__ import annotations

import json
import logging

from observability.logs import JsonFormatter, redact

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("tasks.workflow", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_json_object_with_the_extra_fields() -> None:
    line = JsonFormatter().format(
        record(
            "step finished",
            order_id="801",
            task_id="t",
            step="activating",
            outcome="ok",
            duration_ms=12.5,
        )
    )
    data = json.loads(line)
    assert data["message"] == "step finished"
    assert data["level"] == "info"
    assert data["logger"] == "tasks.workflow"
    fields = ("order_id", "task_id", "step", "outcome", "duration_ms")
    assert [data[f] for f in fields] == ["801", "t", "activating", "ok", 12.5]
    assert data["ts"].endswith("+00:00")


def test_tokens_and_credentials_are_redacted_whoever_logs_them() -> None:
    assert TOKEN not in redact(f"Authorization: Bearer {TOKEN}")
    assert (
        redact("/events?ticket=abc.def&lastEventId=1-0")
        == "/events?ticket=[redacted]&lastEventId=1-0"
    )
    assert redact("secret=hunter2 password=x") == "secret=[redacted] password=[redacted]"
    line = JsonFormatter().format(record("got %s", TOKEN))
    assert TOKEN not in line


def test_access_lines_keep_the_path_without_the_query() -> None:
    atoms = {
        "m": "GET",
        "U": "/api/orders/801/events",
        "s": "200",
        "B": "12",
        "M": "5",
        "h": "127.0.0.1",
    }
    access = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(m)s %(U)s", (), None
    )
    access.args = atoms
    data = json.loads(JsonFormatter().format(access))
    assert data == {
        "ts": data["ts"], "level": "info", "logger": "gunicorn.access", "message": "request",
        "method": "GET", "path": "/api/orders/801/events", "status": 200, "bytes": "12",
        "duration_ms": "5", "remote": "127.0.0.1",
    }  # fmt: skip
