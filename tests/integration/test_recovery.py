"""Crash windows, one at a time: a worker is SIGKILLed at an exact point of the chain (a
crash point in tasks/crashpoints.py), a new one starts, and the order still completes with
exactly one WHMCS order, Salesforce agreeing, and no stage announced twice."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fulfillment.crashpoints import POINTS, arm_key
from notifier import read_snapshot
from notifier.connection import get_redis
from tests.helpers import wait_for_terminal
from tests.workers import WorkerProcess, cli, stack_env

pytestmark = pytest.mark.chaos
RESULTS = Path(__file__).resolve().parents[2] / "build" / "chaos" / "crash-windows.jsonl"
#: Fast recovery for tests: the defaults are 30 s / 10 s / 15 s.
RECOVERY = {"STUCK_AFTER_SECONDS": "2", "RECONCILE_INTERVAL_SECONDS": "0.5", "ALIVE_SECONDS": "1.5"}


@pytest.fixture
def env(sandbox, stack_variables, redis_client) -> Iterator[dict[str, str]]:
    values = stack_env(FULFILLMENT_CRASHPOINTS=",".join(POINTS), **RECOVERY)
    stack_variables(FULFILLMENT_NAMESPACE=values["FULFILLMENT_NAMESPACE"])
    yield values


def assert_exactly_once(order_id: str, events: list[dict], sandbox_client) -> None:
    assert events[-1]["stage"] == "completed", events
    [whmcs] = sandbox_client.whmcs_orders(order_id)
    assert whmcs["status"] == "Active"
    assert {s["status"] for s in whmcs["services"]} == {"Active"}
    assert events[-1]["whmcs"]["orderId"] == whmcs["id"]
    record = sandbox_client.salesforce_order(order_id)["record"]
    assert record["Activation_Status__c"] == "Completed"
    assert record["WHMCS_Order_Id__c"] == str(whmcs["id"])
    stages = [
        e["stage"] for e in read_snapshot(order_id).body["history"] if e["stage"] != "retrying"
    ]
    assert stages == ["queued", "activating", "provisioning", "completed"], stages


def record_result(row: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(json.dumps(row) + "\n")


def kill_at_and_recover(
    env: dict[str, str], order_id: str, point: str, logs: Path
) -> tuple[list, float]:
    """Submit the order to a worker that kills itself (whole worker) at `point`, start a new
    worker, and return the order's events and the seconds from the kill to its last event."""
    get_redis().set(arm_key(point), "1")
    first = WorkerProcess.start(
        {**env, "FULFILLMENT_CRASH_SCOPE": "worker"}, log_file=logs / "w1.log"
    )
    try:
        assert cli(env, "submit", order_id).returncode == 0
        first.process.wait(timeout=60)  # it kills itself (and its pool) at the crash point
        killed_at = time.monotonic()
        second = WorkerProcess.start(env, log_file=logs / "w2.log")
        try:
            events = wait_for_terminal(order_id, timeout=120)
            return events, time.monotonic() - killed_at
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.mark.parametrize("point", POINTS)
def test_a_whole_worker_killed_at_each_point_recovers(env, sandbox_client, point, tmp_path):
    order = sandbox_client.create_order(products=["FIBRE-500", "STATIC-IP"])
    events, recovered = kill_at_and_recover(env, order["orderId"], point, tmp_path)
    assert_exactly_once(order["orderId"], events, sandbox_client)
    record_result({"point": point, "scope": "worker", "recovery_seconds": round(recovered, 2)})


@pytest.mark.parametrize("point", ["after-addorder", "after-accept"])
def test_a_pool_process_killed_mid_step_is_retried_by_its_worker(
    env, sandbox_client, point, tmp_path
):
    order = sandbox_client.create_order()
    get_redis().set(arm_key(point), "1")
    worker = WorkerProcess.start(env, log_file=tmp_path / "worker.log")
    try:
        assert cli(env, "submit", order["orderId"]).returncode == 0
        events = wait_for_terminal(order["orderId"], timeout=60)
        assert worker.alive()  # only the pool child died; the worker retried the step
    finally:
        worker.stop()
    assert_exactly_once(order["orderId"], events, sandbox_client)
    assert get_redis().get(arm_key(point)) is None  # the crash really happened


def test_with_default_settings_a_dead_worker_is_recovered_within_a_minute(
    sandbox, sandbox_client, stack_variables, redis_client, tmp_path
):
    env = stack_env(FULFILLMENT_CRASHPOINTS="after-addorder")
    for name in RECOVERY:  # the defaults: stuck after 30 s, alive marks of 15 s
        env.pop(name, None)
    env["RECONCILE_INTERVAL_SECONDS"] = "10"  # (the default; tests turn it off elsewhere)
    stack_variables(FULFILLMENT_NAMESPACE=env["FULFILLMENT_NAMESPACE"])
    order = sandbox_client.create_order()
    # The worst window: the provisioning lease is held by the dead worker too.
    events, recovered = kill_at_and_recover(env, order["orderId"], "after-addorder", tmp_path)
    assert_exactly_once(order["orderId"], events, sandbox_client)
    record_result({"point": "after-addorder", "scope": "worker", "settings": "default",
                   "recovery_seconds": round(recovered, 2)})  # fmt: skip
    assert recovered < 60
