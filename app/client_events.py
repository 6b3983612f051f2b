"""`POST /api/client-events`: what the browsers' streams go through, reported by the pages.

The order page (and any portal using `order.js`) batches what its connection saw (EventSource
errors, reconnects, ticket and credential failures) and sends it with `navigator.sendBeacon`,
which cannot set headers: the credential is the page's cookie, a Bearer header, or a stream
ticket in `?ticket=`, as for a stream. The body is counts by reason from a fixed list, nothing
else (no ids, no text, no personal data), at most `_MAX_BYTES`; each credential may report
`CLIENT_EVENTS_LIMIT` times per `CLIENT_EVENTS_WINDOW_SECONDS`. The counts become
`fulfillment_client_events_total{reason}`, beside the server's own stream metrics.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, request
from prometheus_client import Counter

from notifier import counters, keys

from .errors import ApiError

bp = Blueprint("client_events", __name__, url_prefix="/api")

#: What a page may report. Anything else is counted as `other` (a newer page than server).
REASONS = frozenset(
    {
        "eventsource-error",  # the connection failed or dropped (EventSource onerror)
        "reconnect",  # a stream opened again after one ended or failed
        "ticket-failed",  # a stream ticket could not be had
        "credential-expired",  # the sign-in ran out (401 TOKEN_EXPIRED)
        "overloaded",  # the server shed the stream (stream.end overloaded)
        "leader-change",  # another tab took over the shared connection
        "unshared",  # neither SharedWorker nor Web Locks: one connection per tab
    }
)
#: A beacon's largest body, and the most reasons and the highest count in one.
_MAX_BYTES = 2048
_MAX_ENTRIES = 16
_MAX_COUNT = 1000

CLIENT_EVENTS = Counter(
    "fulfillment_client_events_total",
    "What the browsers' streams went through, as their pages report it, by reason.",
    ["reason"],
)


@bp.post("/client-events")
def report() -> tuple[str, int]:
    if (request.content_length or 0) > _MAX_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"at most {_MAX_BYTES} bytes")
    principal = current_app.extensions["auth"].from_stream_request(request)
    counts = _counts(request.get_data(cache=False)[: _MAX_BYTES + 1])
    _check_rate(principal.account_id or principal.subject)
    for reason, count in counts.items():
        CLIENT_EVENTS.labels(reason).inc(count)
    return "", 204


def _counts(raw: bytes) -> dict[str, int]:
    """`{"events": {"<reason>": <count>, ...}}` → counts by known reason; 400 otherwise."""
    if len(raw) > _MAX_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"at most {_MAX_BYTES} bytes")
    try:
        body: Any = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, dict) or not 0 < len(events) <= _MAX_ENTRIES:
        raise ApiError(400, "INVALID_REPORT", 'send {"events": {"<reason>": <count>, ...}}')
    counts: dict[str, int] = {}
    for reason, count in events.items():
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= _MAX_COUNT:
            raise ApiError(400, "INVALID_REPORT", f"counts are whole numbers 1-{_MAX_COUNT}")
        name = reason if reason in REASONS else "other"
        counts[name] = counts.get(name, 0) + count
    return counts


def _check_rate(credential: str) -> None:
    web = current_app.extensions["settings"].web
    key = f"{keys.namespace()}:client-events:{{{credential}}}"
    sent, left = counters.hit(key, web.client_events_window_seconds)
    if sent > web.client_events_limit:
        raise ApiError(
            429, "RATE_LIMITED", "too many reports; try again later", {"Retry-After": str(left)}
        )
