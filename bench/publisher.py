"""The publishing side of a benchmark: lifecycle events for many orders, as fast as it can.

Ours go through `notifier.publish` (history + state + PUBLISH, atomically). Stock flask-sse's
are its own envelope (`{"data", "type", "id"}`) PUBLISHed on its channel by the same kind of
pooled client, so both sides face the same burst.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from notifier import keys, publish
from notifier.connection import get_redis
from notifier.events import format_timestamp

#: How far the publishers step back for the process under test (`nice`, 0-19): they stand in
#: for workers on other hosts, but share this machine's two cores with it.
PUBLISHER_NICE = int(os.environ.get("BENCH_PUBLISHER_NICE") or 10)
SETUP: list[dict[str, Any]] = [{"stage": "queued", "message": "waiting"}]
#: The burst: five lifecycle events per order, the last one terminal.
_RETRY = {"stage": "retrying", "step": "provisioning", "nextRetryAt": "soon", "message": "busy"}
BURST: list[dict[str, Any]] = [
    {"stage": "activating", "status": "Activating", "message": "Order marked Activating"},
    {"stage": "provisioning", "message": "Creating the order in WHMCS"},
    {**_RETRY, "attempt": 2},
    {**_RETRY, "attempt": 3},
    {"stage": "completed", "status": "Completed", "whmcs": {"orderId": 1, "serviceIds": [1]}},
]
STAGES = SETUP + BURST


def stock_channel(order_id: str) -> str:
    return f"{keys.namespace()}:stock:order.{order_id}"


def publish_burst(
    side: str, orders: list[str], stages: list[dict[str, Any]], threads: int = 8
) -> dict[str, Any]:
    """Publish `stages`, in order, for every order; returns how long it took."""
    send = _ours if side == "ours" else _stock
    started = time.perf_counter()
    chunks = [orders[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda chunk: [send(o, stages) for o in chunk], chunks))
    seconds = time.perf_counter() - started
    events = len(orders) * len(stages)
    return {"events": events, "seconds": round(seconds, 2), "per_second": round(events / seconds)}


@contextmanager
def publishers(processes: int = 2) -> Iterator[Callable[..., dict[str, Any]]]:
    """`publish_burst` split over processes, which are started (imported, connected, `nice`d)
    before the block: one Python process cannot publish fast enough to make a burst (its
    GIL, not Redis, is the limit), and a process still starting up at full priority would
    take the cores from the burst's first deliveries. Yields `publish(side, orders,
    stages)`; its rate counts the slowest process."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes)
    with context.Pool(processes, initializer=_start_publisher, initargs=(ready,)) as pool:
        pool.apply(_started)  # an initializer has returned: so have all (the barrier)

        def publish(side: str, orders: list[str], stages: list[dict[str, Any]]) -> dict[str, Any]:
            chunks = [orders[i::processes] for i in range(processes)]
            parts = pool.starmap(publish_burst, [(side, chunk, stages) for chunk in chunks])
            events = sum(part["events"] for part in parts)
            seconds = max(part["seconds"] for part in parts)
            return {"events": events, "seconds": seconds, "per_second": round(events / seconds)}

        yield publish


def _start_publisher(ready: Any) -> None:
    # The publishers stand in for workers on other hosts: on a shared two-core machine they
    # must not starve the process under test (or the load generator) of CPU.
    os.nice(PUBLISHER_NICE)
    get_redis().ping()
    ready.wait(timeout=120)


def _started() -> bool:
    return True


def _ours(order_id: str, stages: list[dict[str, Any]]) -> None:
    for update in stages:
        publish(order_id, update)


def _stock(order_id: str, stages: list[dict[str, Any]]) -> None:
    client = get_redis()
    for number, update in enumerate(stages, 1):
        payload = {"orderId": order_id, **update, "timestamp": format_timestamp(datetime.now(UTC))}
        envelope = {"data": payload, "type": "order.update", "id": str(number)}
        client.publish(stock_channel(order_id), json.dumps(envelope))
