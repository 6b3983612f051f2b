"""Collecting and serving a process's Prometheus metrics.

A process with several children (gunicorn's workers, Celery's prefork pool) adds them up
through files in a directory of its own (prometheus-client's multiprocess mode,
`PROMETHEUS_MULTIPROC_DIR`); each process kind has its own directory, so the web's
`/metrics` shows the web's series and the worker's endpoint the worker's.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

from settings import ObservabilitySettings

log = logging.getLogger(__name__)


def registry(observability: ObservabilitySettings) -> CollectorRegistry:
    """The registry to expose: every child's series added up, or this process's own."""
    if observability.metrics_dir:
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected, path=observability.metrics_dir)
        return collected
    return REGISTRY


def serve(observability: ObservabilitySettings, port: int, address: str) -> bool:
    """Serve the metrics on `port` (0: not at all); False when the port is taken (another
    process on this host has it: the caller keeps working)."""
    if not port:
        return False
    try:
        start_http_server(port, addr=address, registry=registry(observability))
    except OSError as exc:
        log.warning("metrics not served on port %s: %s", port, exc)
        return False
    return True


def forget_process(observability: ObservabilitySettings, pid: int) -> None:
    """A child exited: drop its live gauges (counters keep counting in the totals)."""
    if observability.metrics_dir:
        multiprocess.mark_process_dead(pid, path=observability.metrics_dir)
