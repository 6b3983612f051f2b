"""The processes as the Procfile runs them: a `celery worker` (prefork) on Redis or RabbitMQ,
orders submitted with the `fulfillment` CLI, and the worker's own metrics endpoint."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from sandbox.redis_server import free_port
from tests.helpers import wait_for_terminal
from tests.workers import WorkerProcess, cli, stack_env

BROKERS = {
    "redis": lambda: os.environ["REDIS_URL"],
    "rabbitmq": lambda: os.environ["TEST_RABBITMQ_URL"],
    "rabbitmq-quorum": lambda: os.environ["TEST_RABBITMQ_URL"],
}


def rabbitmq_answers() -> bool:
    from kombu import Connection

    try:
        with Connection(os.environ["TEST_RABBITMQ_URL"], connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


@pytest.fixture(params=list(BROKERS))
def env(request, sandbox, stack_variables, tmp_path) -> Iterator[dict[str, str]]:
    if request.param.startswith("rabbitmq") and not rabbitmq_answers():
        url = os.environ["TEST_RABBITMQ_URL"]
        pytest.skip(f"no RabbitMQ answers at {url} and none could be started: NOT tested")
    (tmp_path / "metrics").mkdir()
    values = stack_env(
        CELERY_BROKER_URL=BROKERS[request.param](),
        WORKER_METRICS_PORT=str(free_port()),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        CELERY_QUEUE_TYPE="quorum" if request.param.endswith("quorum") else "classic",
    )
    stack_variables(FULFILLMENT_NAMESPACE=values["FULFILLMENT_NAMESPACE"])
    yield values
    if request.param.startswith("rabbitmq"):
        delete_rabbitmq_queue(f"{values['FULFILLMENT_NAMESPACE']}.fulfillment")


def delete_rabbitmq_queue(name: str) -> None:
    from kombu import Connection

    with Connection(os.environ["TEST_RABBITMQ_URL"]) as connection:
        connection.default_channel.queue_delete(name)


@pytest.fixture
def worker_process(env) -> Iterator[WorkerProcess]:
    worker = WorkerProcess.start(env, concurrency=2)
    yield worker
    worker.stop()


def test_a_worker_process_fulfills_orders_submitted_from_the_cli(
    env, worker_process, sandbox_client
):
    orders = [sandbox_client.create_order() for _ in range(3)]
    sandbox_client.fault("whmcs", "AddOrder", mode="http503", times=1)  # one countdown retry

    submitted = [cli(env, "submit", o["orderId"]) for o in orders]
    again = cli(env, "submit", orders[0]["orderId"])

    assert all(s.returncode == 0 and s.stdout.strip() for s in submitted), submitted
    assert again.stdout.strip() == submitted[0].stdout.strip()
    assert "not queued again" in again.stderr
    for order in orders:
        assert wait_for_terminal(order["orderId"], timeout=60)[-1]["stage"] == "completed"
        assert len(sandbox_client.whmcs_orders(order["orderId"])) == 1
    status = cli(env, "status", orders[0]["orderId"])
    assert '"stage":"completed"' in status.stdout

    # The worker's endpoint adds up its prefork children's metrics.
    text = requests.get(f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics", timeout=5).text
    assert 'fulfillment_orders_total{outcome="completed"} 3.0' in text
    assert 'fulfillment_retries_total{reason="WHMCS_UNAVAILABLE",step="provisioning"} 1.0' in text
    assert 'fulfillment_step_seconds_count{outcome="ok",step="activating"} 3.0' in text
    assert (
        'fulfillment_external_call_seconds_count{operation="AddOrder",outcome="ok",system="whmcs"}'
        in text
    )


def test_task_events_reach_flower_batched_and_complete(sandbox, stack_variables, sandbox_client):
    """Every step raises received, started and succeeded, published a batch at a time
    (`tasks/consumer.py`): some message carries a whole step's three. Only the run's first
    step, which the CLI queued, raises a task-sent event (a worker raises none for the steps
    it queues)."""
    env = stack_env(CELERY_BROKER_URL=os.environ["REDIS_URL"])
    stack_variables(FULFILLMENT_NAMESPACE=env["FULFILLMENT_NAMESPACE"])
    listener = redis.Redis.from_url(env["CELERY_BROKER_URL"]).pubsub()
    listener.psubscribe("*celeryev*")
    worker = WorkerProcess.start(env, concurrency=2)
    try:
        orders = [sandbox_client.create_order()["orderId"] for _ in range(3)]
        for order_id in orders:
            assert cli(env, "submit", order_id).returncode == 0
        for order_id in orders:
            assert wait_for_terminal(order_id, timeout=60)[-1]["stage"] == "completed"
        seen = _TaskEvents(orders)
        seen.collect(listener, steps=3 * len(orders), timeout=30)
    finally:
        worker.stop()
        listener.close()
    raised = {"task-received", "task-started", "task-succeeded"}
    assert len(seen.kinds) == 3 * len(orders)
    assert all(raised <= kinds for kinds in seen.kinds.values()), seen.kinds
    assert any(raised <= kinds for kinds in seen.per_message()), "no batch held a whole step"
    sent = sorted(seen.names[task] for task, kinds in seen.kinds.items() if "task-sent" in kinds)
    assert sent == ["fulfillment.activate"] * len(orders)


class _TaskEvents:
    """The celeryev messages about the steps of `orders` (their arguments name the order)."""

    def __init__(self, orders: list[str]) -> None:
        self.orders = orders
        self.messages: list[list[dict[str, Any]]] = []
        self.names: dict[str, str] = {}
        self.kinds: dict[str, set[str]] = {}

    def collect(self, listener: Any, steps: int, timeout: float) -> None:
        """Until `steps` of our tasks have succeeded (or `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while self._succeeded() < steps and time.monotonic() < deadline:
            message = listener.get_message(timeout=1)
            if message and message["type"] == "pmessage":
                body = json.loads(base64.b64decode(json.loads(message["data"])["body"]))
                self._add(body if isinstance(body, list) else [body])  # task.multi: a list

    def _add(self, events: list[dict[str, Any]]) -> None:
        ours = []
        for event in events:
            task = event.get("uuid")
            if any(order in str(event.get("args", "")) for order in self.orders):
                self.names.setdefault(task, event.get("name", ""))
            if task in self.names:
                self.kinds.setdefault(task, set()).add(event["type"])
                ours.append(event)
        self.messages.append(ours)

    def _succeeded(self) -> int:
        return sum("task-succeeded" in kinds for kinds in self.kinds.values())

    def per_message(self) -> list[set[str]]:
        """Each message's event types, per task."""
        return [
            {e["type"] for e in batch if e["uuid"] == task}
            for batch in self.messages
            for task in {e["uuid"] for e in batch}
        ]
