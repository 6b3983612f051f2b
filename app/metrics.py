"""`GET /metrics`: Prometheus text for this web process, or for every process sharing
`PROMETHEUS_MULTIPROC_DIR` (gunicorn's workers, and on one host the Celery worker too).

It has no auth: bind it privately in production, or set `METRICS_PORT` to serve it on a port of
its own (and answer 404 here).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from observability.metrics import registry

bp = Blueprint("metrics", __name__)

AUTH_FAILURES = Counter(
    "fulfillment_auth_failures_total",
    "Requests refused with 401 or 403, by reason (TOKEN_EXPIRED, OTHER_ACCOUNT, ...).",
    ["reason"],
)


@bp.get("/metrics")
def metrics() -> Response:
    if current_app.config["METRICS_PORT"]:
        # Served on its own port (by gunicorn's master, see gunicorn.conf.py), not here.
        abort(404)
    observability = current_app.extensions["settings"].observability
    return Response(generate_latest(registry(observability)), content_type=CONTENT_TYPE_LATEST)
