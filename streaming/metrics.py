"""Stream metrics (prometheus-client): how many streams are open, how they end, what they carry.

In gunicorn each worker process counts its own; with `PROMETHEUS_MULTIPROC_DIR` set, /metrics
adds them up across processes (the open-streams gauge keeps one series per live process).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STREAMS_OPEN = Gauge(
    "fulfillment_streams_open",
    "Event streams open in this web process.",
    multiprocess_mode="liveall",
)
STREAM_OPENS = Counter("fulfillment_stream_opens_total", "Event streams opened.")
STREAM_CLOSES = Counter(
    "fulfillment_stream_closes_total",
    "Event streams ended, by why: terminal, client-gone, credential-expired, shutdown, "
    "redis-unavailable, slow-client.",
    ["reason"],
)
STREAM_RESUMES = Counter(
    "fulfillment_stream_resumes_total",
    "Connections that came with a last event id, by what they got: replay, snapshot "
    "(the id was not held), finished (204).",
    ["outcome"],
)
STREAMS_REFUSED = Counter(
    "fulfillment_streams_deferred_total",
    "Connections answered with only a retry: because a dependency was down.",
)
STREAMS_SHED = Counter(
    "fulfillment_streams_shed_total",
    "Connections turned away (a retry: and nothing else) because the process was at its "
    "stream limit.",
)
STREAMS_OVER_QUOTA = Counter(
    "fulfillment_streams_over_quota_total",
    "Connections refused with 429 TOO_MANY_STREAMS: the account already held "
    "SSE_MAX_STREAMS_PER_CREDENTIAL streams.",
)
EVENTS_DELIVERED = Counter(
    "fulfillment_events_delivered_total",
    "Events written to streams, by type.",
    ["type"],
)
HEARTBEATS = Counter("fulfillment_heartbeats_total", "Heartbeat comments written.")
SLOW_CLIENT_DISCONNECTS = Counter(
    "fulfillment_slow_client_disconnects_total",
    "Streams disconnected because their client fell too far behind.",
)
DELIVERY_SECONDS = Histogram(
    "fulfillment_event_delivery_seconds",
    "From an update's publication (its timestamp) to its write on a live stream; events "
    "written together count once, by the oldest of them.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
