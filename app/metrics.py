"""`GET /metrics`: Prometheus text for this web process, or for every process sharing
`PROMETHEUS_MULTIPROC_DIR` (gunicorn's workers, and on one host the Celery worker too).

Bind it privately in production: it has no auth.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)

bp = Blueprint("metrics", __name__)

AUTH_FAILURES = Counter(
    "fulfillment_auth_failures_total",
    "Requests refused with 401 or 403, by reason (TOKEN_EXPIRED, OTHER_ACCOUNT, ...).",
    ["reason"],
)


def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
