"""`fulfillment listen`: Salesforce's approvals (Platform Events over the Pub/Sub API emulator,
with the real grpcio client) start fulfillment, with a real Redis and a real worker, and no
HTTP trigger anywhere.

Each test marks its orders (their Description) and gives the listener a sweep condition that
only matches them, so a sweep never picks up another test's approvals from the shared sandbox.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from listener import lease, position
from notifier import current_state, read_snapshot
from sandbox.redis_server import free_port
from settings import RecoverySettings
from tasks.celery_app import dispatcher
from tasks.reconciler import reconcile_once
from tests.helpers import wait_for_terminal, wait_until
from tests.workers import ListenerProcess, cli

pytestmark = pytest.mark.slow
TOPIC = "/event/Order_Activation__e"


class Stack:
    """Listener processes of one test, and the orders it approves."""

    def __init__(self, sandbox_client, tmp_path: Path, env: dict[str, str], marker: str) -> None:
        self.sandbox, self.tmp_path, self.env, self.marker = sandbox_client, tmp_path, env, marker
        self.listeners: list[tuple[ListenerProcess, int]] = []

    def start(self) -> tuple[ListenerProcess, int]:
        port = free_port()
        env = {**self.env, "LISTENER_METRICS_PORT": str(port)}
        log = self.tmp_path / f"listener-{len(self.listeners)}.log"
        started = ListenerProcess.start(env, log_file=log), port
        self.listeners.append(started)
        return started

    def wait_subscribed(self) -> None:
        """Until one of the listeners holds the lease and its stream has answered."""
        self.listeners[-1][0].wait_subscribed(TOPIC)

    def approve(self, **extra: object) -> str:
        order = self.sandbox.create_order(description=self.marker, **extra)
        self.sandbox.approve_order(order["orderId"])
        return str(order["orderId"])

    def counted(self, outcome: str) -> float:
        """The listeners' `fulfillment_listener_events_total{outcome=…}`, added up."""
        total = 0.0
        for process, port in self.listeners:
            if not process.alive():
                continue
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:  # just started: not serving yet
                continue
            match = re.search(
                rf'fulfillment_listener_events_total{{outcome="{outcome}"}} (\S+)', text
            )
            total += float(match.group(1)) if match else 0.0
        return total

    def stop(self) -> None:
        for process, _ in self.listeners:
            process.stop()


@pytest.fixture
def stack(sandbox, sandbox_client, worker, redis_client, tmp_path) -> Iterator[Stack]:
    marker = f"listener-test-{uuid.uuid4().hex[:8]}"
    sandbox_client.pubsub_settings(keepaliveSeconds=0.3)
    position.forget()
    env = {
        **os.environ,
        "SALESFORCE_APPROVED_CONDITION": f"Approved__c = true AND Description = '{marker}'",
        "LISTENER_LEASE_SECONDS": "2",
        "LISTENER_KEEPALIVE_SECONDS": "1",
        "LOG_FORMAT": "text",
    }
    running = Stack(sandbox_client, tmp_path, env, marker)
    yield running
    running.stop()
    sandbox_client.pubsub_settings(keepaliveSeconds=270, retentionSeconds=72 * 3600)


def queued_runs(order_id: str) -> list[int]:
    snapshot = read_snapshot(order_id)
    history = snapshot.body["history"] if snapshot else []
    return [event.get("run", 1) for event in history if event["stage"] == "queued"]


def test_an_approval_in_salesforce_completes_the_order_with_no_http_trigger(stack) -> None:
    stack.start()
    stack.wait_subscribed()
    order_id = stack.approve()
    events = wait_for_terminal(order_id, timeout=60)
    assert events[-1]["stage"] == "completed"
    assert queued_runs(order_id) == [1]
    assert len(stack.sandbox.whmcs_orders(order_id)) == 1
    status = json.loads(cli(stack.env, "listen", "--status").stdout)
    assert status["active"] == lease.holder() and status["position"]


def test_a_redelivered_event_starts_nothing_and_a_new_approval_reopens_a_failed_order(
    stack,
) -> None:
    stack.start()
    stack.wait_subscribed()
    order_id = stack.approve()
    assert wait_for_terminal(order_id, timeout=60)[-1]["stage"] == "completed"

    stack.sandbox.redeliver(count=1, on="open")  # Salesforce delivers at least once
    wait_until(lambda: stack.counted("duplicate") >= 1, timeout=30)
    assert queued_runs(order_id) == [1]

    failing = stack.sandbox.create_order(description=stack.marker)["orderId"]
    stack.sandbox.fault("whmcs", "AddOrder", mode="error", times=1)
    stack.sandbox.approve_order(failing)
    assert wait_for_terminal(failing, timeout=60)[-1]["stage"] == "failed"
    stack.sandbox.clear_faults()
    stack.sandbox.approve_order(failing)  # approved again: a new event, a new run
    wait_until(lambda: (current_state(failing) or {}).get("stage") == "completed", timeout=60)
    assert queued_runs(failing) == [1, 2]


def test_a_position_past_the_retention_is_swept_and_nothing_runs_twice(stack) -> None:
    listener, _ = stack.start()
    stack.wait_subscribed()
    seen = stack.approve()
    assert wait_for_terminal(seen, timeout=60)[-1]["stage"] == "completed"
    listener.stop()

    missed = [stack.approve() for _ in range(3)]  # while nobody listens
    stack.sandbox.expire_events()  # ...and past the retention: the stored position is refused
    stack.start()
    for order_id in missed:
        assert wait_for_terminal(order_id, timeout=60)[-1]["stage"] == "completed"
        assert queued_runs(order_id) == [1]
    assert queued_runs(seen) == [1]
    wait_until(lambda: stack.counted("swept") == 3, timeout=30)


@pytest.mark.parametrize("mode", ["unauthenticated", "unavailable"])
def test_a_stream_ended_by_salesforce_resumes_and_loses_nothing(stack, mode) -> None:
    stack.start()
    stack.wait_subscribed()
    stack.sandbox.fault("salesforce", "Subscribe", mode=mode, times=1)
    order_id = stack.approve()
    assert wait_for_terminal(order_id, timeout=60)[-1]["stage"] == "completed"
    assert queued_runs(order_id) == [1]


def test_two_listeners_one_subscribes_and_the_standby_takes_over(stack) -> None:
    first, _ = stack.start()
    second, _ = stack.start()
    stack.wait_subscribed()
    active = lease.holder()
    pids = {str(first.process.pid): first, str(second.process.pid): second}
    holder = next(process for pid, process in pids.items() if f":{pid}:" in str(active))
    standby = second if holder is first else first
    assert standby.alive()
    holder.kill()  # SIGKILL: no goodbye, the lease runs out

    order_id = stack.approve()
    assert wait_for_terminal(order_id, timeout=60)[-1]["stage"] == "completed"
    assert f":{standby.process.pid}:" in str(lease.holder())
    assert queued_runs(order_id) == [1]


def test_a_burst_of_approvals_survives_a_listener_killed_three_times(stack) -> None:
    listener, _ = stack.start()
    stack.wait_subscribed()
    # 60 at CI size; the 300 with LISTENER_BURST_APPROVALS=300.
    size = int(os.environ.get("LISTENER_BURST_APPROVALS") or 60)
    orders = stack.sandbox.create_orders(size, description=stack.marker, approve=True)

    def all_claimed() -> bool:
        return all(current_state(order["orderId"]) is not None for order in orders)

    for _ in range(3):  # each time mid-burst if the burst is still going
        wait_until(lambda: stack.counted("started") > 0 or all_claimed(), timeout=30)
        listener.kill()
        listener, _ = stack.start()

    # A listener killed between a claim and its queueing leaves that order to the reconciler
    # (as a web process killed there does); the tests run it when they mean to.
    recovery = RecoverySettings(
        stuck_after_seconds=2, reconcile_interval_seconds=1, alive_seconds=2, max_takeovers=5
    )

    def all_finished() -> bool:
        reconcile_once(dispatcher(), recovery)
        return all(
            (current_state(order["orderId"]) or {}).get("stage") == "completed" for order in orders
        )

    wait_until(all_finished, timeout=150 + size)
    for order in orders:
        assert queued_runs(order["orderId"]) == [1]
        assert len(stack.sandbox.whmcs_orders(order["orderId"])) == 1
