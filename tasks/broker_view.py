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

from notifier.connection import run_script

from .config import broker_url, queue_name

#: kombu's Redis transport keeps one list per priority step: the name, then name\x06\x16<n>.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_SCAN_LUA = """
local found, seen = {}, {}
for _, key in ipairs(KEYS) do
  for _, message in ipairs(redis.call('LRANGE', key, 0, -1)) do
    for id in string.gmatch(message, "'(801%w%w%w%w%w%w%w%w%w%w%w%w%w%w%w)'") do
      if not seen[id] then seen[id] = true; table.insert(found, id) end
    end
  end
end
return found
"""


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def queued_orders() -> set[str] | None:
    """Ids of orders with a message in the broker's queue, or None if it cannot be read."""
    url = broker_url()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    keys = [queue_name() + suffix for suffix in _PRIORITY_SUFFIXES]
    return {str(order_id) for order_id in run_script(_SCAN_LUA, keys, [], _client(url))}
