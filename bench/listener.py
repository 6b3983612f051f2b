"""listener: Salesforce approvals through the Pub/Sub API emulator to `queued`, with a worker
running (its prefork pool takes the orders as they are queued, as in production).

A paced run first, while the worker has no backlog: orders approved one by one at a steady
rate (an open loop: approval n at n / rate seconds); the latency of each is its event's
creation (the emulator's clock, this machine's) to its order's `queued` event. Then a burst:
N orders approved in one sandbox request (one transaction, as a bulk update: their
Platform Events published together);
events per second handled is N over the time from the first event's creation to the last
order's `queued` event. Both use the listener as the Procfile runs it (`fulfillment
listen`), with its defaults (batches of 100), subscribed before anything is approved.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from notifier import read_snapshot
from notifier.events import parse_timestamp
from sandbox.client import SandboxClient
from settings import current
from tests.workers import ListenerProcess, WorkerProcess

from .environment import private_sandbox
from .percentiles import in_milliseconds
from .profile import profiled

TOPIC = "/event/Order_Activation__e"
#: The paced run's rate (events/s) and its length.
PACED_RATE = 200
PACED_SECONDS = 3


def run(approvals: int = 2_000) -> dict[str, Any]:
    with private_sandbox() as sandbox_process:
        sandbox = SandboxClient.from_environment()
        sandbox.pubsub_settings(keepaliveSeconds=0.5)
        logs = Path(os.environ["SANDBOX_DIR"])
        env = {**os.environ, "LISTENER_METRICS_PORT": "0"}
        worker = WorkerProcess.start(env, concurrency=4, log_file=logs / "worker-listener.log")
        listener = ListenerProcess.start(env, log_file=logs / "listener.log")
        try:
            listener.wait_subscribed(TOPIC, timeout=60)
            # Paced first, while the worker has no backlog: the burst leaves it one for minutes.
            paced = _paced(sandbox, PACED_RATE, PACED_RATE * PACED_SECONDS)
            with (
                profiled(listener.process.pid, "listener-burst"),
                profiled(sandbox_process.pid, "listener-burst-sandbox"),
                profiled(worker.process.pid, "listener-burst-worker", subprocesses=True),
            ):
                burst = _burst(sandbox, approvals)
        finally:
            listener.stop()
            worker.stop()
    return {
        "parameters": {
            "approvals": approvals,
            "batch_size": current().listener.batch_size,
            "paced_rate": PACED_RATE,
            "worker_concurrency": 4,
        },
        "burst": burst,
        "paced": paced,
        "targets": {
            "at_least_1000_events_per_second": burst["events_per_second"] >= 1000,
            "paced_p99_under_100_ms": (paced["event_to_queued_ms"]["p99"] or 1e9) < 100,
        },
    }


def _burst(sandbox: SandboxClient, approvals: int) -> dict[str, Any]:
    orders = [o["orderId"] for o in sandbox.create_orders(approvals, approve=True)]
    queued = _wait_queued(orders)
    created = _created(sandbox, orders)
    spans = [queued[o] - created[o] for o in orders if o in created]
    seconds = max(queued.values()) - min(created.values())
    return {
        "events": len(orders),
        "events_per_second": round(len(orders) / seconds, 1),
        "event_to_queued_ms": _percentiles(spans),
    }


def _paced(sandbox: SandboxClient, rate: float, count: int) -> dict[str, Any]:
    orders = [o["orderId"] for o in sandbox.create_orders(count)]
    started = time.monotonic()

    def approve(numbered: tuple[int, str]) -> None:
        number, order_id = numbered
        time.sleep(max(0.0, started + number / rate - time.monotonic()))
        sandbox.approve_order(order_id)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(approve, enumerate(orders)))
    # The rate the approvals went out at: the last one's time, not the wait for the queue.
    achieved = count / (time.monotonic() - started)
    queued = _wait_queued(orders)
    created = _created(sandbox, orders)
    spans = [queued[o] - created[o] for o in orders if o in created]
    return {
        "events": count,
        "approved_per_second": round(min(achieved, rate), 1),
        "event_to_queued_ms": _percentiles(spans),
    }


def _wait_queued(orders: list[str], timeout: float = 300) -> dict[str, float]:
    """Each order's `queued` time (its first event's timestamp), once every one has it."""
    deadline, found = time.monotonic() + timeout, dict[str, float]()
    while len(found) < len(orders) and time.monotonic() < deadline:
        for order_id in orders:
            if order_id in found:
                continue
            snapshot = read_snapshot(order_id)
            history = snapshot.body["history"] if snapshot else []
            stamp = parse_timestamp(history[0]["timestamp"]) if history else None
            if stamp is not None:
                found[order_id] = stamp
        if len(found) < len(orders):
            time.sleep(0.2)
    return found


def _created(sandbox: SandboxClient, orders: list[str]) -> dict[str, float]:
    """Each order's event creation time, as the emulator recorded it."""
    wanted = set(orders)
    return {
        event["orderId"]: datetime.fromisoformat(event["created"]).timestamp()
        for event in sandbox.pubsub_events()
        if event["orderId"] in wanted
    }


def _percentiles(spans: list[float]) -> dict[str, float | None]:
    figures = in_milliseconds(spans)
    return {key: figures[key] for key in ("p50", "p99", "max")}
