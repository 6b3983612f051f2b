"""What the broker still holds: which orders have a message waiting in the queue.

The reconciler must not take over an order that is merely waiting its turn behind a backlog.
On the Redis broker the queue is a Redis list we can read (one Lua pass per round, matching
order ids in each message's `argsrepr` header). RabbitMQ queues cannot be browsed; there the
reconciler relies on its threshold alone (and RabbitMQ redelivers a dead worker's messages
by itself).
"""

from __future__ import annotations

from functools import cache

import redis

import settings
from notifier.connection import run_script
from notifier.scripts import LuaScript

from .config import queue_name

#: kombu's Redis transport keeps one list per priority step: the name, then name\x06\x16<n>.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_QUEUED_ORDERS = LuaScript.load(__file__, "queued_orders")


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def broker_client() -> redis.Redis | None:
    """A client of the Redis broker (not the event store: they may be apart), or None when
    the broker is not Redis."""
    url = settings.current().broker.url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _client(url)


def queued_orders() -> set[str] | None:
    """Ids of orders with a message in the broker's queue, or None if it cannot be read."""
    client = broker_client()
    if client is None:
        return None
    keys = [queue_name() + suffix for suffix in _PRIORITY_SUFFIXES]
    return {str(order_id) for order_id in run_script(_QUEUED_ORDERS, keys, [], client)}
