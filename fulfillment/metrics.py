"""Fulfillment's metrics: what it did, how long its steps took, why it retried, what the
reconciler took over. (External call latency is `fulfillment_external_call_seconds`, in
integrations; how they are collected and served is `observability.metrics`.)
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ORDERS = Counter(
    "fulfillment_orders_total", "Orders that reached a terminal stage, by outcome.", ["outcome"]
)
TRIGGERS = Counter(
    "fulfillment_triggers_total",
    "Fulfillment requests, by outcome (queued, duplicate).",
    ["outcome"],
)
STEP_SECONDS = Histogram(
    "fulfillment_step_seconds",
    "Duration of one execution of a step, by step and outcome (ok, retry, failed, stale).",
    ["step", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter(
    "fulfillment_retries_total",
    "Step retries scheduled, by step and reason (error code).",
    ["step", "reason"],
)


TAKEOVERS = Counter(
    "fulfillment_takeovers_total", "Stuck orders resumed by the reconciler, by stage.", ["stage"]
)
