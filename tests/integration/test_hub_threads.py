"""The hub under real threads (a non-gevent server, or the test client): many streams
subscribing and leaving at once never lose the reader's wake-up."""

from __future__ import annotations

import threading

import settings
from streaming.hub import Hub, HubUnavailable


def test_concurrent_subscribes_from_threads_are_all_confirmed(redis_client):
    hub = Hub(settings.current().redis.url)
    failures: list[str] = []

    def churn(worker: int) -> None:
        for round_ in range(300):
            order_id = f"801hubthread{worker:02d}{round_:04d}"
            try:
                subscriber = hub.subscribe(order_id, limit=10)
            except HubUnavailable as exc:  # the reader missed its wake-up: 5 s, then this
                failures.append(f"{order_id}: {exc}")
                return
            hub.unsubscribe(subscriber)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    hub.shutdown()
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
