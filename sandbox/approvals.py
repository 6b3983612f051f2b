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
    with world.lock:
        sobjects.apply_changes(order, {APPROVED_FIELD: True})
        world.changed()
        order_id = str(order["Id"])
    event = publish_activation(bus, order_id)
    return {"orderId": order_id, "eventId": event.id, "replayId": event.replay_id.hex()}


def publish_activation(bus: EventBus, order_id: str) -> Event:
    """The Flow's Create Records element on `Order_Activation__e`."""
    topic = bus.topic(ORDER_ACTIVATION_TOPIC)
    if topic is None:
        raise LookupError(f"the sandbox has no topic {ORDER_ACTIVATION_TOPIC}")
    now = time.time()
    record = {"CreatedDate": int(now * 1000), "CreatedById": oauth.USER_ID, ORDER_FIELD: order_id}
    return bus.publish(topic.name, topic.encode(record), created=now)
