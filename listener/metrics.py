"""The listener's metrics (served on `LISTENER_METRICS_PORT` by `fulfillment listen`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "fulfillment_listener_events_total",
    "Platform Events handled, by outcome: started, duplicate, unknown-order, malformed, "
    "swept (started by the sweep, not an event), failed (could not be handled; redelivered).",
    ["outcome"],
)
RECONNECTS = Counter(
    "fulfillment_listener_reconnects_total",
    "Subscriptions opened again, by reason: unavailable, unauthenticated, replay-refused, "
    "silent (the watchdog), lease-lost, error.",
    ["reason"],
)
EVENT_TO_QUEUED = Histogram(
    "fulfillment_listener_event_to_queued_seconds",
    "From the event's creation in Salesforce to the order's queued event.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
POSITION_AGE = Gauge(
    "fulfillment_listener_position_age_seconds",
    "How long ago the stored position moved (a keep-alive moves it too).",
)
ACTIVE = Gauge(
    "fulfillment_listener_active", "1 while this process holds the lease and subscribes."
)
