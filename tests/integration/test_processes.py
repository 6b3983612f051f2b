"""The processes as the Procfile runs them: a `celery worker` (prefork) on Redis or RabbitMQ,
orders submitted with the `fulfillment` CLI, and the worker's own metrics endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
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
