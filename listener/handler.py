"""A batch of Platform Events → starts, through the same use case as the HTTP trigger.

Delivery is at least once. A redelivered event (same event id) is refused by the claim
itself (the event id is recorded with the `queued` event, atomically), so it never starts a
second pipeline nor reopens a failed order; a new event for a failed order opens its next run,
as an operator retry would. An event without an order id, or whose order Salesforce does not
know, is logged and counted, and never stops the stream.

A batch costs one Salesforce call at most: the orders whose owner nobody recorded are asked
about in one query, between the claims' read and their commit (`start_many`; the answers are
recorded with the claims, so their streams need no call either). The starts are one batch:
every claim in two Redis round trips, each atomic on its own, then one message that queues
the chain of every order claimed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fulfillment.claims import UnknownOrder
from fulfillment.ownership import Ownership
from fulfillment.ports import Dispatcher
from fulfillment.requests import Trigger, start_many
from integrations.pubsub_client import Event
from notifier import normalize_order_id

from .metrics import EVENT_TO_QUEUED, EVENTS

log = logging.getLogger(__name__)


class Handler:
    def __init__(self, dispatcher: Dispatcher, ownership: Ownership, order_field: str) -> None:
        self.dispatcher, self.ownership, self.order_field = dispatcher, ownership, order_field

    def handle(self, events: list[Event]) -> list[str]:
        """Start every event's order; returns each event's outcome (also counted)."""
        wanted = [(event, self._order_id(event)) for event in events]
        outcomes: dict[int, str] = {}
        starts: list[tuple[int, Event, str]] = []
        for index, (event, order_id) in enumerate(wanted):
            if order_id is None:
                outcomes[index] = self._outcome("malformed", event, level=logging.WARNING)
            else:
                starts.append((index, event, order_id))
        started = self._start_all([(oid, event.event_id) for _, event, oid in starts])
        for (index, event, order_id), trigger in zip(starts, started, strict=True):
            outcomes[index] = self._started(event, order_id, trigger)
        return [outcomes[index] for index in range(len(events))]

    def _start_all(self, requests: list[tuple[str, str | None]]) -> list[Trigger | Exception]:
        if not requests:
            return []
        try:
            return start_many(requests, self.dispatcher, self.ownership.gateway.get_order_facts)
        except Exception as exc:  # Redis away: every start of the batch comes back later
            return [exc] * len(requests)

    def _order_id(self, event: Event) -> str | None:
        return normalize_order_id(str(event.fields.get(self.order_field) or ""))

    def _started(self, event: Event, order_id: str, trigger: Trigger | Exception) -> str:
        if isinstance(trigger, UnknownOrder):
            return self._outcome("unknown-order", event, order_id, logging.WARNING)
        if isinstance(trigger, Exception):  # not this event's fault (Redis, the broker)
            log.error("platform event not handled: %r", trigger)
            return self._outcome("failed", event, order_id, logging.ERROR)
        if trigger.duplicate:
            return self._outcome("duplicate", event, order_id)
        _observe_latency(event.fields)
        return self._outcome("started", event, order_id)

    def _outcome(
        self, outcome: str, event: Event, order_id: str | None = None, level: int = logging.INFO
    ) -> str:
        EVENTS.labels(outcome).inc()
        extra = {"order_id": order_id, "outcome": outcome, "code": event.event_id}
        log.log(level, "platform event handled", extra=extra)
        return outcome


def _observe_latency(fields: dict[str, Any]) -> None:
    created = fields.get("CreatedDate")
    if isinstance(created, int) and created > 0:  # epoch milliseconds, as Salesforce sends
        EVENT_TO_QUEUED.observe(max(0.0, time.time() - created / 1000))
