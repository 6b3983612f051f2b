"""Redis key and channel names, all under the settings' namespace (`FULFILLMENT_NAMESPACE`).

The namespace prefixes everything, so two stacks, or a test run beside `make run`, can share
one Redis without seeing each other (how its default is chosen: `settings.read_namespace`).

Per-order keys carry the order id as a hash tag (`{801...}`) so an order's state and history
always share a Redis Cluster slot.

Redis pub/sub ignores database numbers: channel names are namespaced for the same reason.
"""

from __future__ import annotations

import settings


def namespace() -> str:
    return settings.current().namespace


def state_key(order_id: str) -> str:
    """Hash: `payload` (the last update, JSON), `seq`, `lastEventId`, `progress`."""
    return f"{namespace()}:order:{{{order_id}}}:state"


def history_key(order_id: str) -> str:
    """Stream: one entry per published update; the entry id is the SSE event id."""
    return f"{namespace()}:order:{{{order_id}}}:history"


def order_key(order_id: str, purpose: str) -> str:
    """Another per-order key (a lock, a cache) in the order's slot."""
    return f"{namespace()}:order:{{{order_id}}}:{purpose}"


def channel(order_id: str) -> str:
    """The pub/sub channel carrying the order's flask-sse envelopes."""
    return f"{namespace()}:sse:order.{order_id}"


def active_orders_key() -> str:
    """Sorted set of non-terminal orders scored by their last update time (for the reconciler)."""
    return f"{namespace()}:orders:active"
