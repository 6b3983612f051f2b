"""`fulfillment listen`: the listener process, put together from the process's settings."""

from __future__ import annotations

import logging
import signal
from typing import Any

import settings
from fulfillment.ownership import Ownership
from integrations import SalesforceGateway
from observability import logs
from observability import metrics as collected

from . import lease, position
from .handler import Handler
from .service import Listener

log = logging.getLogger(__name__)


def build() -> Listener:
    from tasks.celery_app import dispatcher

    current = settings.current()
    gateway = SalesforceGateway(current.salesforce)
    handler = Handler(dispatcher(), Ownership(gateway, current.web), current.listener.order_field)
    return Listener(current.listener, gateway, handler, dispatcher())


def run() -> None:
    """Run until SIGTERM or SIGINT: a standby until it holds the lease, then the listener."""
    current = settings.current()
    logs.configure(current.observability)
    where = current.listener
    collected.serve(current.observability, where.metrics_port, where.metrics_address)
    listener = build()

    def stop(signum: int, _frame: Any) -> None:
        log.info("listener stopping (signal %s)", signum)
        listener.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener.run()


def status() -> dict[str, Any]:
    """Who listens, and where the stored position is (for `fulfillment listen --status`)."""
    topic = settings.current().listener.topic
    stored = position.load(topic)
    return {
        "active": lease.holder(),
        "topic": topic,
        "position": stored.replay_id.hex() if stored else None,
        "positionAgeSeconds": round(stored.age_seconds, 1) if stored else None,
    }
