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
OWNERSHIP_LOOKUPS = Counter(
    "fulfillment_ownership_lookups_total",
    "Answers to who owns an order, by where they came from: recorded (no call), known-unknown "
    "(no call), coalesced (joined another request's lookup), other-process (waited for another "
    "process's lookup), salesforce, salesforce-unknown (one per order asked about; see the "
    "batch histogram for calls), error, rate-limited.",
    ["outcome"],
)
OWNERSHIP_LOOKUP_BATCH = Histogram(
    "fulfillment_ownership_lookup_batch_orders",
    "Orders asked about in one Salesforce query by the ownership lookups (one API call each).",
    buckets=(1, 2, 5, 10, 25, 50, 100, 200),
)
