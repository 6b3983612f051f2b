"""The web process: the orders API, the event stream, the order page, health and metrics.

`create_app()` is the factory gunicorn loads (`app:create_app()`): defaults, then the
environment, then `overrides` (tests).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from integrations import SalesforceGateway
from notifier.admission import Admission, AdmissionLimits
from notifier.quota import StreamQuota

from .auth import Authenticator
from .config import load_settings
from .errors import register_error_handlers
from .ownership import Ownership
from .security import register_security_headers


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = load_settings(overrides)
    app.config.update(settings)
    app.extensions["auth"] = Authenticator(settings)
    app.extensions["salesforce"] = SalesforceGateway()
    app.extensions["ownership"] = Ownership(app.extensions["salesforce"], settings)
    app.extensions["stream_admission"] = Admission(_admission_limits(settings))
    app.extensions["stream_quota"] = StreamQuota(settings["SSE_MAX_STREAMS_PER_CREDENTIAL"])
    register_error_handlers(app)
    register_security_headers(app)

    from . import dev, health, metrics, orders, pages, stream

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(pages.bp)
    if settings["DEV_TOOLS"]:
        app.register_blueprint(dev.bp)
    return app


def _admission_limits(settings: dict[str, Any]) -> AdmissionLimits:
    return AdmissionLimits(
        max_streams=settings["SSE_MAX_STREAMS"],
        open_concurrency=settings["SSE_OPEN_CONCURRENCY"],
        retry_ms=settings["SSE_RETRY_MS"],
        shed_retry_seconds=settings["SSE_SHED_RETRY_SECONDS"],
        reconnect_rate=settings["SSE_RECONNECT_RATE"],
    )
