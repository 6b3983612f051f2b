"""The web process: the orders API, the event stream, the order page, health and metrics.

`create_app()` is the factory gunicorn loads (`app:create_app()`): the process's settings
(read once), with `overrides` by variable name (tests).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import settings as process_settings
from fulfillment.ownership import Ownership
from integrations import SalesforceGateway
from settings import Settings, WebSettings
from streaming.admission import Admission, AdmissionLimits
from streaming.quota import StreamQuota

from .auth import Authenticator
from .config import flask_config, web_settings
from .errors import register_error_handlers
from .security import register_security_headers


def create_app(overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    app = Flask(__name__)
    settings = settings or process_settings.current()
    web = web_settings(settings, overrides)
    app.config.update(flask_config(web, overrides))
    app.extensions["settings"] = settings
    app.extensions["web_settings"] = web
    app.extensions["auth"] = Authenticator(web)
    app.extensions["salesforce"] = SalesforceGateway(settings.salesforce)
    app.extensions["ownership"] = Ownership(app.extensions["salesforce"], web)
    app.extensions["stream_admission"] = Admission(_admission_limits(web))
    app.extensions["stream_quota"] = StreamQuota(web.sse_max_streams_per_credential)
    register_error_handlers(app)
    register_security_headers(app)
    if web.trusted_proxies:
        # Behind `WEB_TRUSTED_PROXIES` proxies (nginx: docker/nginx.conf), the client's
        # address, scheme and host are theirs to tell; with none, such headers are ignored,
        # since anyone could send them.
        n = web.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    from . import client_events, dev, health, metrics, orders, pages, stream

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(client_events.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(pages.bp)
    if web.dev_tools:
        app.register_blueprint(dev.bp)
    return app


def _admission_limits(web: WebSettings) -> AdmissionLimits:
    return AdmissionLimits(
        max_streams=web.sse_max_streams or 0,
        open_concurrency=web.sse_open_concurrency,
        retry_ms=web.sse_retry_ms,
        shed_retry_seconds=web.sse_shed_retry_seconds,
        reconnect_rate=web.sse_reconnect_rate,
    )
