"""The sweep: approved orders fulfillment never touched, started without an event.

It runs when the listener has no position (first start) and when Salesforce refuses the
stored one (expired after the 72-hour retention, or corrupted): the stream cannot say what
was missed then, Salesforce's own records can. An order the pipeline knows (it has state) is
skipped; one being started by a late event at the same moment is a duplicate to the claim.
"""

from __future__ import annotations

import logging

from fulfillment.ports import Dispatcher
from fulfillment.requests import request_fulfillment
from integrations import SalesforceGateway
from notifier import owners

from .metrics import EVENTS

log = logging.getLogger(__name__)


def sweep(gateway: SalesforceGateway, approved_condition: str, dispatcher: Dispatcher) -> int:
    """Start every approved order with no pipeline state; returns how many were started."""
    started = 0
    for order_id, record in owners.read_owners(
        gateway.orders_not_started(approved_condition)
    ).items():
        if record.submitted:
            continue
        if not request_fulfillment(order_id, dispatcher).duplicate:
            EVENTS.labels("swept").inc()
            started += 1
    log.info("sweep finished", extra={"outcome": "swept", "code": str(started)})
    return started
