"""Worker metrics: what fulfillment did, how long its steps took, why it retried.

Celery's prefork children each count their own; with `PROMETHEUS_MULTIPROC_DIR` set (the
Procfile gives the worker a fresh one), the worker's endpoint (`WORKER_METRICS_PORT`) adds
them up. External call latency is `fulfillment_external_call_seconds` (integrations).
"""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client import start_http_server as _serve

log = logging.getLogger(__name__)

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


def serve_worker_metrics() -> None:
    """Expose the worker's metrics on `WORKER_METRICS_PORT` (default 9808; 0 disables)."""
    port = int(os.environ.get("WORKER_METRICS_PORT") or 9808)
    if port == 0:
        return
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    try:
        _serve(port, addr=os.environ.get("WORKER_METRICS_ADDRESS") or "0.0.0.0", registry=registry)
    except OSError as exc:  # another worker on this host has the port: keep working
        log.warning("worker metrics not served on port %s: %s", port, exc)


def forget_process(pid: int) -> None:
    """A pool child exited: drop its live gauges (counters keep counting in the totals)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
