"""Chaos: dozens of orders through real worker processes, the sandbox and a web process, while
workers are SIGKILLed at random moments and restarted, and Redis (AOF on) is restarted once,
after the second kill, with orders in flight.

Every order must complete, with exactly one WHMCS order, Salesforce agreeing with the last
event, and each follower (a browser-like client that reconnects and resumes by event id)
having seen exactly the order's history: no gap, no repeat.

`CHAOS_ORDERS` (default 30) and `CHAOS_SECONDS` (default 20) make it bigger. The figures of
each run are appended to build/chaos/chaos.jsonl.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier import keys, placement, read_snapshot
from notifier.connection import get_redis
from sandbox.redis_cluster import LocalCluster
from sandbox.redis_server import RedisServer
from tests.followers import Follower
from tests.sse import start_web
from tests.workers import WorkerProcess, stack_env

pytestmark = pytest.mark.chaos
RESULTS = Path(__file__).resolve().parents[2] / "build" / "chaos" / "chaos.jsonl"
RECOVERY = {"STUCK_AFTER_SECONDS": "3", "RECONCILE_INTERVAL_SECONDS": "1", "ALIVE_SECONDS": "2"}


class _ClusterStore:
    """The event store on a private local cluster (a `TEST_REDIS_CLUSTER=1` run), beside a
    private broker: `stop`/`start` restart every node, as a Redis restart would."""

    def __init__(self, tmp_path: Path) -> None:
        self.cluster = LocalCluster(data_dir=str(tmp_path / "cluster"), appendonly=True).start()
        self.broker = RedisServer(data_dir=str(tmp_path / "broker"), appendonly=True).start()
        self.url, self.broker_url = self.cluster.url, self.broker.url

    def stop(self) -> None:
        self.cluster.stop_nodes()

    def start(self) -> None:
        self.cluster.start_nodes()

    def close(self) -> None:
        self.cluster.stop()
        self.broker.stop()


@pytest.fixture
def private_redis(tmp_path, stack_variables) -> Iterator[Any]:
    """The run's own event store and broker (`url`, `broker_url`), restartable."""
    if placement.clustered():
        store = _ClusterStore(tmp_path)
        stack_variables(REDIS_URL=store.url, CELERY_BROKER_URL=store.broker_url)
        yield store
        store.close()
        return
    # Every write on disk before it is acknowledged: a restart may lose nothing.
    server = RedisServer(data_dir=str(tmp_path / "redis"), appendonly=True, appendfsync="always")
    server.start()
    server.broker_url = server.url  # type: ignore[attr-defined]
    stack_variables(REDIS_URL=server.url, CELERY_BROKER_URL=server.url)
    yield server
    server.stop()


def test_orders_survive_killed_workers_and_a_redis_restart(
    sandbox, sandbox_client, private_redis, tokens, stack_variables, tmp_path
):
    orders_wanted = int(os.environ.get("CHAOS_ORDERS") or 30)
    chaos_seconds = float(os.environ.get("CHAOS_SECONDS") or 20)
    env = stack_env(
        REDIS_URL=private_redis.url, CELERY_BROKER_URL=private_redis.broker_url, **RECOVERY
    )
    stack_variables(FULFILLMENT_NAMESPACE=env["FULFILLMENT_NAMESPACE"])
    sandbox_client.fault("whmcs", "*", latencyMs=150)  # orders take long enough to be hit
    sandbox_client.fault("salesforce", "*", latencyMs=50)
    service = tokens.headers(tokens.service())
    web = start_web(SSE_HEARTBEAT_SECONDS="2", quiet=True)  # this process's env: the private Redis
    workers = [
        WorkerProcess.start(env, concurrency=2, log_file=tmp_path / f"w{i}.log") for i in range(2)
    ]
    kills, readyz_503 = 0, False
    try:
        orders = [sandbox_client.create_order()["orderId"] for _ in range(orders_wanted)]
        for order_id in orders:
            answer = requests.post(
                f"{web.url}/api/orders/{order_id}/fulfill", headers=service, timeout=10
            )
            assert answer.status_code == 202, answer.text
        followers = [Follower([(web.host, web.port)], order_id, service) for order_id in orders]
        for follower in followers:
            follower.start()

        started = time.monotonic()
        restarted_redis = False

        # Redis restarts while orders are in flight (after the second kill), and always: the
        # loop does not end before it, however fast the orders go.
        def in_flight() -> bool:
            return not all(f.done.is_set() for f in followers)

        while not restarted_redis or (time.monotonic() - started < chaos_seconds and in_flight()):
            time.sleep(random.uniform(0.5, 1.5))
            victim = random.randrange(len(workers))
            workers[victim].kill()
            kills += 1
            workers[victim] = WorkerProcess.start(
                env, concurrency=2, log_file=tmp_path / f"w{victim}.log"
            )
            if not restarted_redis and kills >= 2:
                private_redis.stop()  # SIGTERM: Redis writes its AOF and exits
                readyz_503 = requests.get(f"{web.url}/readyz", timeout=5).status_code == 503
                private_redis.start()
                restarted_redis = True

        deadline = time.monotonic() + 180
        while not all(f.done.is_set() for f in followers) and time.monotonic() < deadline:
            time.sleep(0.5)
        for follower in followers:
            follower.done.set()
    finally:
        for worker in workers:
            worker.stop()
        web.stop()

    histories = {o: read_snapshot(o).body["history"] for o in orders}
    stuck = [o for o, h in histories.items() if h[-1]["stage"] != "completed"]
    whmcs = {o: sandbox_client.whmcs_orders(o) for o in orders}
    duplicates = [o for o, found in whmcs.items() if len(found) > 1]
    longest_gap = max(_longest_gap(h) for h in histories.values())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(json.dumps({
            "orders": len(orders), "kills": kills, "redis_restarts": int(restarted_redis),
            "whmcs_duplicates": len(duplicates), "stuck": len(stuck),
            "longest_gap_seconds": round(longest_gap, 2),
        }) + "\n")  # fmt: skip

    assert restarted_redis and readyz_503
    details = {
        o: [(e["stage"], e["timestamp"], e.get("error")) for e in histories[o]] for o in stuck
    }
    assert stuck == [] and duplicates == [], details
    for order_id, history in histories.items():
        [order] = whmcs[order_id]
        assert order["status"] == "Active" and {s["status"] for s in order["services"]} == {
            "Active"
        }
        record = sandbox_client.salesforce_order(order_id)["record"]
        assert record["Activation_Status__c"] == history[-1]["status"] == "Completed"
        assert (
            record["WHMCS_Order_Id__c"] == str(history[-1]["whmcs"]["orderId"]) == str(order["id"])
        )
        stages = [e["stage"] for e in history if e["stage"] != "retrying"]
        assert stages == ["queued", "activating", "provisioning", "completed"], (order_id, stages)
    for follower in followers:
        assert follower.seen == histories[follower.order_id], follower.order_id  # no gap, no repeat
    assert get_redis().zcard(keys.active_orders_key()) == 0


def _longest_gap(history: list[dict]) -> float:
    """The longest time the order went without an event (how long a recovery took)."""
    from notifier.events import parse_timestamp

    times = [parse_timestamp(e["timestamp"]) or 0.0 for e in history]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)
