"""Redis key and channel names, all under the settings' namespace (`FULFILLMENT_NAMESPACE`).

The namespace prefixes everything, so two stacks, or a test run beside `make run`, can share
one Redis without seeing each other (how its default is chosen: `settings.read_namespace`).

Per-order keys and the order's channel carry the order id as a hash tag (`{801...}`) so an
order's state, history and channel always share a Redis Cluster slot; an account's keys and
channel carry its account id the same way. What else lives where: `placement`.

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
    """The pub/sub channel carrying the order's flask-sse envelopes (in the order's slot: on a
    cluster it is a shard channel, published by the script that commits the order)."""
    return f"{namespace()}:sse:order.{{{order_id}}}"


def active_orders_key() -> str:
    """Sorted set of non-terminal orders scored by their last update time (for the reconciler)."""
    return f"{namespace()}:orders:active"


def account_events_key(account_id: str) -> str:
    """Stream: every update of the account's orders, in publication order; the entry id is the
    account stream's SSE event id (`data` the payload, `eventId` its id in the order's own)."""
    return f"{namespace()}:account:{{{account_id}}}:events"


def account_orders_key(account_id: str) -> str:
    """Sorted set: the account's orders we know of, scored by when they were first seen (ms)."""
    return f"{namespace()}:account:{{{account_id}}}:orders"


def account_channel(account_id: str) -> str:
    """The pub/sub channel carrying the account stream's envelopes (in the account's slot)."""
    return f"{namespace()}:sse:account.{{{account_id}}}"
