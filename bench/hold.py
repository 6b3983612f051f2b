"""Hold N event streams open on one web process and report what it costs: Redis connections
held by the process, resident memory per stream, and how fast closed streams are released.

    python -m bench.hold --streams 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from urllib.parse import urlparse

from app.auth import mint_token
from app.config import load_settings
from notifier import publish
from notifier.connection import redis_url
from tests.sse import start_web

from .loadgen import open_many, raise_fd_limit
from .orders import new_order_ids


async def hold(streams: int) -> dict[str, object]:
    os.environ.setdefault("FULFILLMENT_NAMESPACE", f"bench-{uuid.uuid4().hex[:8]}")
    os.environ.setdefault("SANDBOX_DIR", tempfile.mkdtemp(prefix="bench-sandbox-"))
    limits = raise_fd_limit(streams * 2 + 1000)
    token = mint_token(load_settings(), account_id=None, scope="orders:read", ttl=3600)
    orders = new_order_ids(max(1, streams // 2))
    for order_id in orders:
        publish(order_id, {"stage": "queued", "message": "waiting"})
    paths = [f"/api/orders/{orders[i % len(orders)]}/events" for i in range(streams)]
    redis_port = urlparse(redis_url()).port or 6379
    server = start_web(
        quiet=True, SSE_HEARTBEAT_SECONDS="15", WEB_WORKER_CONNECTIONS=str(streams + 100)
    )
    headers = {"Authorization": f"Bearer {token}"}
    try:
        await _open_and_close(server, paths[:200], headers)  # warm up pools and allocators
        rss_before, redis_before = server.rss(), server.connections_to(redis_port)
        started = time.monotonic()
        opened, readers = await open_many("127.0.0.1", server.port, paths, headers, _record)
        await asyncio.gather(*(_snapshot(s) for s in opened))
        connect_seconds = time.monotonic() - started
        rss_after, redis_held = server.rss(), server.connections_to(redis_port)
        sockets_open = server.server_sockets()
        release_seconds = await _close_and_time(server, opened, readers)
    finally:
        server.stop()
    return {
        "scenario": "hold",
        "streams": streams,
        "ok": sum(1 for s in opened if s.status == 200),
        "server_sockets_open": sockets_open,
        "redis_connections_held": redis_held,
        "redis_connections_before": redis_before,
        "rss_per_stream_kb": round((rss_after - rss_before) / streams / 1024, 1),
        "connect_all_seconds": round(connect_seconds, 2),
        "release_seconds": round(release_seconds, 2),
        "fd_limit": limits[0],
    }


async def _snapshot(stream) -> None:  # type: ignore[no-untyped-def]
    while not stream.events and not stream.done.is_set():
        await asyncio.sleep(0.01)


async def _open_and_close(server, paths, headers) -> None:  # type: ignore[no-untyped-def]
    opened, readers = await open_many("127.0.0.1", server.port, paths, headers, _record)
    await asyncio.gather(*(_snapshot(s) for s in opened))
    await _close_and_time(server, opened, readers)


def _record(stream, at, kind, data) -> None:  # type: ignore[no-untyped-def]
    stream.events.append((at, kind, data))


async def _close_and_time(server, opened, readers) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    for stream in opened:
        stream.close()
    for reader in readers:
        reader.cancel()
    while server.server_sockets() > 0 and time.monotonic() - started < 120:
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(hold(args.streams))))


if __name__ == "__main__":
    main()
