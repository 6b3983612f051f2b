"""A storm of customer streams, CI-size: 2,000 opened at the same moment (1,000 orders, two
streams each; every order has an account of its own and both its streams carry that account's
customer token), on one gunicorn + gevent web process and the sandbox.

- Orders created in Salesforce and never submitted: every stream gets its order's snapshot of
  an order not started yet, none is refused, and Salesforce is asked at most once per order
  however many streams ask at once.
- Orders submitted through the HTTP trigger first (no worker consumes the web's queue, so they
  stay `queued`): every snapshot says `queued`, none is refused, and no stream costs a
  Salesforce call, even on a web process that has never seen the orders.
- The web process restarted under those streams: every one resumes (reconnecting as a browser
  does, after the `retry:` it was told), none is refused, no Salesforce call.

`make bench`'s storm scenario measures the same at 10,000 streams; nothing here is timed.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.loadgen import (
    BrowserStream,
    begin_phase,
    new_event_loop,
    phase_figures,
    raise_fd_limit,
    start_storm,
    stop_all,
    wait_served,
)
from bench.orders import trigger_all
from tests.sse import WebProcess, start_web

pytestmark = pytest.mark.slow

ORDERS = 1_000
STREAMS_PER_ORDER = 2
STREAMS = ORDERS * STREAMS_PER_ORDER
#: This process holds every client socket, and the in-process sandbox the server's side of
#: the web's Salesforce calls.
FDS_NEEDED = STREAMS + ORDERS + 1_000
#: Only bounds a server that never answers: no assertion here is about speed.
DEADLINE_SECONDS = 120


@pytest.fixture
def namespace(sandbox, redis_client) -> Iterator[str]:
    """A namespace of the web's own: its Celery queue is one that no worker consumes (the
    suite's worker, once started, consumes the suite's), so submitted orders stay queued."""
    if raise_fd_limit(FDS_NEEDED)[0] < FDS_NEEDED:
        pytest.skip(f"needs {FDS_NEEDED} file descriptors (ulimit -n)")
    name = f"{os.environ['FULFILLMENT_NAMESPACE']}-storm-{uuid.uuid4().hex[:6]}"
    yield name
    for key in redis_client.scan_iter(match=f"{name}*", count=1000):
        redis_client.delete(key)


def start_storm_web(namespace: str) -> WebProcess:
    return start_web(
        quiet=True,
        FULFILLMENT_NAMESPACE=namespace,
        WEB_WORKER_CONNECTIONS=str(STREAMS + 1_000),
        WEB_BACKLOG="4096",
        SSE_HEARTBEAT_SECONDS="60",
    )


def storm(
    web: WebProcess, orders: list[dict[str, Any]], tokens: Any, restart: bool = False
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Two streams per order, all connecting at once; once each has its snapshot (or the
    deadline passed), the figures and every stream's (order id, snapshot or None). With
    `restart`, the web worker is then SIGTERMed under them and the figures are those of the
    reconnects (each stream resuming as a browser does, with its last event id)."""
    snapshots: dict[BrowserStream, Any] = {}

    def on_event(stream: BrowserStream, at: float, kind: str | None, data: str) -> None:
        if kind == "order.snapshot":
            snapshots.setdefault(stream, json.loads(data))

    order_of: dict[BrowserStream, str] = {}
    for order in orders:
        headers = tokens.headers(tokens.customer(order["accountId"]))
        path = f"/api/orders/{order['orderId']}/events"
        for _ in range(STREAMS_PER_ORDER):
            stream = BrowserStream(path, headers, frozenset({"order.snapshot"}), on_event)
            order_of[stream] = order["orderId"]
    streams = list(order_of)

    async def run() -> dict[str, Any]:
        tasks = start_storm("127.0.0.1", web.port, streams)
        await wait_served(streams, DEADLINE_SECONDS)
        figures = phase_figures(streams, streams[0].phase_started_at)
        if restart and figures["served"] == STREAMS:
            restarted_at = time.time()
            begin_phase(streams, restarted_at)
            os.kill(web.worker_pid(), signal.SIGTERM)  # gunicorn's master starts another
            await wait_served(streams, DEADLINE_SECONDS)
            figures = phase_figures(streams, restarted_at)
        await stop_all(streams, tasks)
        return figures

    figures = run_in_own_thread(run)
    return figures, [(order_of[stream], snapshots.get(stream)) for stream in streams]


def run_in_own_thread(main: Any) -> Any:
    """Run the coroutine function `main` on a loop of its own, in a thread of its own: the
    browser tests' Playwright keeps an event loop running in the main thread."""
    from concurrent.futures import ThreadPoolExecutor

    def run() -> Any:
        loop = new_event_loop()
        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def not_snapshots_of(snapshots: list[tuple[str, Any]], stage: str | None) -> list[Any]:
    """Streams whose snapshot is missing, of another order, or not at `stage`."""
    return [
        (order_id, snapshot)
        for order_id, snapshot in snapshots
        if snapshot is None or snapshot.get("orderId") != order_id or snapshot["stage"] != stage
    ]


def storm_on_fresh_web(
    namespace: str, orders: list[dict[str, Any]], tokens: Any, sandbox_client: Any, **how: Any
) -> tuple[dict[str, Any], list[tuple[str, Any]], int]:
    """`storm` on a web process that has never seen the orders; also the Salesforce calls
    it made meanwhile."""
    web = start_storm_web(namespace)
    try:
        before = sandbox_client.api_calls()
        figures, snapshots = storm(web, orders, tokens, **how)
        return figures, snapshots, sandbox_client.api_calls() - before
    finally:
        web.stop()


def submit(namespace: str, orders: list[dict[str, Any]]) -> None:
    """Through the HTTP trigger, on a web process of its own."""
    web = start_storm_web(namespace)
    try:
        answers = trigger_all(web.url, [order["orderId"] for order in orders])
    finally:
        web.stop()
    assert answers == {"202": ORDERS}


def test_a_storm_on_orders_never_submitted_asks_salesforce_once_per_order(
    namespace, sandbox_client, tokens
):
    orders = sandbox_client.create_orders(ORDERS)
    figures, snapshots, calls = storm_on_fresh_web(namespace, orders, tokens, sandbox_client)

    assert figures["refused_by_reason"] == {}
    assert figures["served"] == STREAMS
    wrong = not_snapshots_of(snapshots, None)
    assert not wrong, f"{len(wrong)} streams, e.g. {wrong[:3]}"
    assert all(snapshot["history"] == [] for _, snapshot in snapshots)
    assert calls <= ORDERS


def test_a_storm_on_submitted_orders_asks_salesforce_nothing(namespace, sandbox_client, tokens):
    orders = sandbox_client.create_orders(ORDERS)
    submit(namespace, orders)
    # A process that has never seen the orders: what it knows of their owners, Redis knows.
    figures, snapshots, calls = storm_on_fresh_web(namespace, orders, tokens, sandbox_client)

    assert figures["refused_by_reason"] == {}
    assert figures["served"] == STREAMS
    wrong = not_snapshots_of(snapshots, "queued")
    assert not wrong, f"{len(wrong)} streams, e.g. {wrong[:3]}"
    assert calls == 0


def test_a_restarted_web_process_takes_its_storm_back(namespace, sandbox_client, tokens):
    orders = sandbox_client.create_orders(ORDERS)
    submit(namespace, orders)
    figures, _, calls = storm_on_fresh_web(namespace, orders, tokens, sandbox_client, restart=True)

    # Every browser came back (after the spread-out retry: it was told) and resumed by id.
    assert figures["refused_by_reason"] == {}
    assert figures["served"] == STREAMS
    assert figures["attempts"] >= STREAMS  # each reconnected at least once
    assert calls == 0
