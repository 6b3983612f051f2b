"""Approving an Order, and what the org's record-triggered Flow does when one is approved.

Approval ticks the Order's `Approved__c` checkbox (so a sweep can find approved orders with
`SELECT Id FROM Order WHERE Approved__c = true`); the Flow then publishes an
`Order_Activation__e` platform event naming the order (Publish After Commit, so the order is
readable once the event is out). Each approval publishes a new event, as approving an order
again (unticking and ticking the box) would in Salesforce.
"""

from __future__ import annotations

import time
from typing import Any

from . import oauth, sobjects
from .pubsub_bus import Event, EventBus
from .pubsub_topics import ORDER_ACTIVATION_TOPIC, ORDER_FIELD
from .state import Record, World

APPROVED_FIELD = "Approved__c"


def approve(world: World, bus: EventBus, order: Record) -> dict[str, Any]:
    """Mark `order` approved and publish its event; the control API's answer."""
    (answer,) = approve_all(world, bus, [order])
    return answer


def approve_all(world: World, bus: EventBus, orders: list[Record]) -> list[dict[str, Any]]:
    """Approve `orders` in one transaction, as a bulk update (a list view's mass action, a data
    load) does: the Flow runs once for them all, and their events are published together
    after the commit."""
    with world.lock:
        for order in orders:
            sobjects.apply_changes(order, {APPROVED_FIELD: True})
        world.changed()
        order_ids = [str(order["Id"]) for order in orders]
    events = publish_activations(bus, order_ids)
    return [
        {"orderId": order_id, "eventId": event.id, "replayId": event.replay_id.hex()}
        for order_id, event in zip(order_ids, events, strict=True)
    ]


def publish_activations(bus: EventBus, order_ids: list[str]) -> list[Event]:
    """The Flow's Create Records element on `Order_Activation__e`, once per order."""
    topic = bus.topic(ORDER_ACTIVATION_TOPIC)
    if topic is None:
        raise LookupError(f"the sandbox has no topic {ORDER_ACTIVATION_TOPIC}")
    now = time.time()
    records = [
        {"CreatedDate": int(now * 1000), "CreatedById": oauth.USER_ID, ORDER_FIELD: order_id}
        for order_id in order_ids
    ]
    return bus.publish_all(topic.name, [topic.encode(r) for r in records], created=now)
