"""/metrics on the web process, and the worker's metrics, moving with what happens."""

from __future__ import annotations

import pytest
import requests
from prometheus_client import REGISTRY

from notifier import publish
from tests.helpers import sample, wait_for_terminal
from tests.integration.test_stream import new_order_id, open_stream, queued, retrying, wait_until
from tests.sse import web_process


def scrape(web) -> str:
    return requests.get(f"{web.url}/metrics", timeout=5).text


@pytest.fixture(scope="module")
def web(sandbox):
    with web_process(SSE_HEARTBEAT_SECONDS="1") as running:
        yield running


def test_the_web_metrics_follow_streams_as_they_open_and_close(web, tokens, redis_client):
    headers = tokens.headers(tokens.service())
    before = scrape(web)
    orders = [new_order_id() for _ in range(3)]
    first_ids = [queued(order_id) for order_id in orders]

    streams = [open_stream(web, order_id, headers) for order_id in orders]
    for stream in streams:
        stream.until(lambda e: e.type == "order.snapshot")
    streams[0].until(lambda e: e.comment == "heartbeat")
    during = scrape(web)
    for stream in streams:
        stream.close()
    wait_until(lambda: sample(scrape(web), "fulfillment_streams_open") == 0, 20)
    resumed = open_stream(web, orders[0], {**headers, "Last-Event-ID": first_ids[0]})
    retrying(orders[0], 2)
    resumed.until(lambda e: e.type == "order.update")
    resumed.close()
    refused = requests.get(f"{web.url}/api/orders/{orders[0]}/events", timeout=5)
    wait_until(lambda: sample(scrape(web), "fulfillment_streams_open") == 0, 20)
    # Live writes are counted in the process and written a second at a time.
    delivered = lambda text: sample(text, "fulfillment_event_delivery_seconds_count")  # noqa: E731
    wait_until(lambda: delivered(scrape(web)) > delivered(before), 20)
    after = scrape(web)

    assert refused.status_code == 401
    assert sample(during, "fulfillment_streams_open") == 3  # one series per web process
    assert "pid=" in next(
        line for line in during.splitlines() if line.startswith("fulfillment_streams_open{")
    )
    grew = lambda name, **labels: sample(after, name, **labels) - sample(before, name, **labels)  # noqa: E731
    assert grew("fulfillment_stream_opens_total") == 4
    assert grew("fulfillment_stream_closes_total", reason="client-gone") == 4
    assert grew("fulfillment_stream_resumes_total", outcome="replay") == 1
    assert grew("fulfillment_events_delivered_total", type="order.snapshot") == 3
    assert grew("fulfillment_events_delivered_total", type="order.update") == 1
    assert grew("fulfillment_heartbeats_total") >= 1
    assert grew("fulfillment_auth_failures_total", reason="TOKEN_MISSING") == 1
    assert grew("fulfillment_event_delivery_seconds_count") == 1


def test_slow_client_disconnects_are_counted(sandbox, tokens, redis_client):
    headers = tokens.headers(tokens.service())
    order_id = new_order_id()
    queued(order_id)
    with web_process(SSE_HEARTBEAT_SECONDS="30", SSE_QUEUE_LIMIT="5") as web:
        slow = open_stream(web, order_id, headers)  # never read again
        big = "x" * 16_000
        for attempt in range(2, 402):
            update = {"stage": "retrying", "step": "activating", "attempt": attempt,
                      "nextRetryAt": "x", "message": big}  # fmt: skip
            publish(order_id, update)
        wait_until(
            lambda: sample(scrape(web), "fulfillment_slow_client_disconnects_total") == 1, 20
        )
        wait_until(
            lambda: (
                sample(scrape(web), "fulfillment_stream_closes_total", reason="slow-client") == 1
            ),
            20,
        )
        slow.close()


def test_the_worker_counts_outcomes_steps_retries_and_external_calls(
    client, tokens, sandbox_client, worker
):
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        "completed": value("fulfillment_orders_total", outcome="completed"),
        "failed": value("fulfillment_orders_total", outcome="failed"),
        "retries": value(
            "fulfillment_retries_total", step="provisioning", reason="WHMCS_UNAVAILABLE"
        ),
        "steps": value("fulfillment_step_seconds_count", step="activating", outcome="ok"),
        "calls": value(
            "fulfillment_external_call_seconds_count",
            system="whmcs",
            operation="AddOrder",
            outcome="ok",
        ),
    }
    good, bad = sandbox_client.create_order(), sandbox_client.create_order()
    sandbox_client.fault("whmcs", "AddOrder", mode="http503", times=1)
    service = tokens.headers(tokens.service())
    client.post(f"/api/orders/{good['orderId']}/fulfill", headers=service)
    assert wait_for_terminal(good["orderId"])[-1]["stage"] == "completed"
    sandbox_client.fault("whmcs", "AddOrder", mode="error", message="Client ID Not Found", times=1)
    client.post(f"/api/orders/{bad['orderId']}/fulfill", headers=service)
    assert wait_for_terminal(bad["orderId"])[-1]["stage"] == "failed"
    # Counters move just after the events are published: poll them with a deadline.
    wait_until(
        lambda: value("fulfillment_orders_total", outcome="failed") - before["failed"] == 1, 10
    )
    assert value("fulfillment_orders_total", outcome="completed") - before["completed"] == 1
    retries = value("fulfillment_retries_total", step="provisioning", reason="WHMCS_UNAVAILABLE")
    assert retries - before["retries"] == 1
    wait_until(
        lambda: (
            value("fulfillment_step_seconds_count", step="activating", outcome="ok")
            - before["steps"]
            == 2
        ),
        10,
    )
    calls = value(
        "fulfillment_external_call_seconds_count",
        system="whmcs",
        operation="AddOrder",
        outcome="ok",
    )
    assert calls - before["calls"] == 1
    assert (
        value(
            "fulfillment_external_call_seconds_count",
            system="salesforce",
            operation="update_order",
            outcome="ok",
        )
        > 0
    )
