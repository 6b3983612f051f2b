"""The web process: the orders API, the event stream, the order page, health and metrics.

`create_app()` is the factory gunicorn loads (`app:create_app()`): defaults, then the
environment, then `overrides` (tests).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from integrations import SalesforceGateway

from .auth import Authenticator
from .config import load_settings
from .errors import register_error_handlers


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = load_settings(overrides)
    app.config.update(settings)
    app.extensions["auth"] = Authenticator(settings)
    app.extensions["salesforce"] = SalesforceGateway()
    register_error_handlers(app)

    from . import dev, health, metrics, orders, pages, stream

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(pages.bp)
    if settings["DEV_TOOLS"]:
        app.register_blueprint(dev.bp)
    return app
