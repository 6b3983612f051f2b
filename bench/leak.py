"""leak: N streams on quiet orders (no event will ever come), then every client leaves.

How long until the web process's sockets and Redis's client count are back to where they
were? Ours notices closed clients through the gevent loop; stock flask-sse only notices when
it next writes, which for a quiet channel is never (the window is two heartbeats long).
"""

from __future__ import annotations

import time
from typing import Any

from notifier import keys
from notifier.connection import get_redis
from tests.sse import start_web

from .fanout import APPS, _all_connected, _headers, _path, submit
from .loadgen import close_all, new_event_loop, open_many, raise_fd_limit
from .orders import new_account_ids, new_order_ids

HEARTBEAT_SECONDS = 15


def run(streams: int = 2_000) -> dict[str, Any]:
    raise_fd_limit(streams * 2 + 2_000)
    orders = new_order_ids(streams)
    owners = dict(zip(orders, new_account_ids(streams), strict=True))
    submit(owners)  # customer streams, as in fanout
    sides = {side: measure(side, owners) for side in ("ours", "stock")}
    return {
        "parameters": {"streams": streams, "heartbeat_seconds": HEARTBEAT_SECONDS,
                       "window_seconds": 2 * HEARTBEAT_SECONDS},
        **sides,
    }  # fmt: skip


def measure(side: str, owners: dict[str, str]) -> dict[str, Any]:
    web = start_web(app=APPS[side], quiet=True, SSE_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
                    WEB_WORKER_CONNECTIONS=str(len(owners) + 1000), WEB_BACKLOG="8192")  # fmt: skip
    try:
        return new_event_loop().run_until_complete(_leave_and_watch(side, web, owners))
    finally:
        web.stop()


async def _leave_and_watch(side: str, web: Any, owners: dict[str, str]) -> dict[str, Any]:
    orders = list(owners)
    paths = [_path(side, order_id) for order_id in orders]
    headers = _headers(side, owners, orders)
    if side == "ours":  # fill its connection pool first: pooled connections are not a leak
        warm, warm_readers = await open_many(
            "127.0.0.1", web.port, paths[:200], headers[:200], lambda *a: None
        )
        await _all_connected(side, warm, orders[:200], len(warm))
        await close_all(warm, warm_readers)
        time.sleep(1)
    idle_sockets, idle_clients, idle_channels = web.server_sockets(), _clients(), _channels()
    opened, readers = await open_many("127.0.0.1", web.port, paths, headers, lambda *a: None)
    await _all_connected(side, opened, orders, len(paths))
    held_sockets, held_clients, held_channels = web.server_sockets(), _clients(), _channels()
    left_at = time.monotonic()
    await close_all(opened, readers)
    released = None
    while time.monotonic() - left_at < 2 * HEARTBEAT_SECONDS:
        if (
            web.server_sockets() <= idle_sockets
            and _clients() <= idle_clients
            and _channels() <= idle_channels
        ):
            released = round(time.monotonic() - left_at, 2)
            break
        time.sleep(0.1)
    return {
        "server_sockets": {
            "idle": idle_sockets,
            "open": held_sockets,
            "after": web.server_sockets(),
        },
        "redis_clients": {"idle": idle_clients, "open": held_clients, "after": _clients()},
        "redis_subscriptions": {"idle": idle_channels, "open": held_channels, "after": _channels()},
        "released_seconds": released,  # None: not back to idle within the window
    }


def _channels() -> int:
    """Channels with at least one subscriber, in this run's namespace (both sides')."""
    return len(get_redis().pubsub_channels(f"{keys.namespace()}:*"))


def _clients() -> int:
    return int(get_redis().info("clients")["connected_clients"])
