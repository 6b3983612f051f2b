"""Fixed-window counters in Redis: how often something happened per credential per window.

The window opens with the first hit and lasts `window_seconds`; the count and what is left of
the window come back in the same round trip, so a caller can refuse with `Retry-After`.
"""

from __future__ import annotations

from .connection import get_redis


def hit(key: str, window_seconds: int) -> tuple[int, int]:
    """Count one more hit in `key`'s window; the hits so far and the window's seconds left."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, max(1, window_seconds), nx=True)
    pipe.ttl(key)
    count, _, left = pipe.execute()
    return int(count), max(1, int(left))
