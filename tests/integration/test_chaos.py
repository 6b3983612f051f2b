"""Chaos: dozens of orders through real worker processes, the sandbox and a web process, while
workers are SIGKILLed at random moments and restarted, and the event store is disrupted once,
after the second kill, with orders in flight: Redis (AOF on) restarted, or on a cluster every
node restarted, or (a second test, clusters only) a shard's primary SIGKILLed so its replica
takes over, with each commit waiting for the replica (`REDIS_WAIT_REPLICAS=1`).

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
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


class _SingleStore:
    """One private Redis for the event store and the broker; `disrupt` restarts it."""

    kind = "redis-restart"

    def __init__(self, tmp_path: Path) -> None:
        # Every write on disk before it is acknowledged: a restart may lose nothing.
        self.server = RedisServer(
            data_dir=str(tmp_path / "redis"), appendonly=True, appendfsync="always"
        ).start()
        self.url = self.broker_url = self.server.url

    def disrupt(self, web_url: str, order_id: str) -> bool:
        """Stop Redis (SIGTERM: it writes its AOF and exits), then start it from its files;
        whether `/readyz` said 503 meanwhile."""
        return _restart(web_url, self.server.stop, self.server.start)

    def close(self) -> None:
        self.server.stop()


class _ClusterStore:
    """The event store on a private local cluster (a `TEST_REDIS_CLUSTER=1` run), beside a
    private broker; `disrupt` restarts every node, as a Redis restart would."""

    kind = "redis-restart"

    def __init__(self, tmp_path: Path, replicas: int = 0) -> None:
        self.cluster = LocalCluster(
            data_dir=str(tmp_path / "cluster"), appendonly=True, replicas=replicas
        ).start()
        self.broker = RedisServer(data_dir=str(tmp_path / "broker"), appendonly=True).start()
        self.url, self.broker_url = self.cluster.url, self.broker.url

    def disrupt(self, web_url: str, order_id: str) -> bool:
        return _restart(web_url, self.cluster.stop_nodes, self.cluster.start_nodes)

    def close(self) -> None:
        self.cluster.stop()
        self.broker.stop()


def _restart(web_url: str, stop: Callable[[], None], start: Callable[[], None]) -> bool:
    """Stop the store, ask the web process whether it is ready, start the store again;
    whether `/readyz` said 503 meanwhile."""
    stop()
    unready = requests.get(f"{web_url}/readyz", timeout=5).status_code == 503
    start()
    return unready


class _FailoverStore(_ClusterStore):
    """A cluster with a replica per primary; `disrupt` SIGKILLs the primary of the given
    order's slot, waits for its replica to take over, and starts the dead node again (it
    rejoins as a replica)."""

    kind = "failover"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, replicas=1)
        self.url = self.cluster.seeds  # a worker started while the seed node is down connects

    def disrupt(self, web_url: str, order_id: str) -> bool:
        """Whether another node serves the slot now."""
        key = keys.channel(order_id)
        primary = self.cluster.primary_of(key)
        primary.stop(kill=True)
        deadline = time.monotonic() + 30
        while not self._promoted(key, primary.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        promoted = self._promoted(key, primary.port)
        primary.start()
        return promoted

    def _promoted(self, key: str, old_port: int) -> bool:
        try:
            return self.cluster.primary_of(key).port != old_port
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
            return False  # mid-failover, no node may answer for the slot


@pytest.fixture
def private_redis(tmp_path, stack_variables) -> Iterator[Any]:
    """The run's own event store and broker (`url`, `broker_url`), to disrupt."""
    store = _ClusterStore(tmp_path) if placement.clustered() else _SingleStore(tmp_path)
    stack_variables(REDIS_URL=store.url, CELERY_BROKER_URL=store.broker_url)
    yield store
    store.close()


@pytest.fixture
def failover_redis(tmp_path, stack_variables) -> Iterator[Any]:
    """A replicated cluster of its own, each commit waiting for its replica."""
    if not placement.clustered():
        pytest.skip("failover runs on a Redis Cluster: make test runs it with TEST_REDIS_CLUSTER=1")
    store = _FailoverStore(tmp_path)
    stack_variables(REDIS_URL=store.url, CELERY_BROKER_URL=store.broker_url)
    yield store
    store.close()


def test_orders_survive_killed_workers_and_a_redis_restart(
    sandbox, sandbox_client, private_redis, tokens, stack_variables, tmp_path
):
    disrupted = _chaos(sandbox_client, private_redis, tokens, stack_variables, tmp_path, {})
    assert disrupted, "/readyz did not answer 503 while Redis was down"


def test_orders_survive_killed_workers_and_a_primary_failover(
    sandbox, sandbox_client, failover_redis, tokens, stack_variables, tmp_path
):
    waits = {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "100"}
    disrupted = _chaos(sandbox_client, failover_redis, tokens, stack_variables, tmp_path, waits)
    assert disrupted, "the killed primary's replica did not take over"


def _chaos(sandbox_client, store, tokens, stack_variables, tmp_path, extra: dict) -> bool:
    """The run: orders, followers, workers killed and restarted, the store disrupted once
    (after the second kill, with orders in flight); then every guarantee asserted. Returns
    what the disruption reported."""
    orders_wanted = int(os.environ.get("CHAOS_ORDERS") or 30)
    chaos_seconds = float(os.environ.get("CHAOS_SECONDS") or 20)
    env = stack_env(REDIS_URL=store.url, CELERY_BROKER_URL=store.broker_url, **RECOVERY, **extra)
    stack_variables(FULFILLMENT_NAMESPACE=env["FULFILLMENT_NAMESPACE"], **extra)
    sandbox_client.fault("whmcs", "*", latencyMs=150)  # orders take long enough to be hit
    sandbox_client.fault("salesforce", "*", latencyMs=50)
    service = tokens.headers(tokens.service())
    web = start_web(SSE_HEARTBEAT_SECONDS="2", quiet=True)  # this process's env: the private Redis
    workers = [
        WorkerProcess.start(env, concurrency=2, log_file=tmp_path / f"w{i}.log") for i in range(2)
    ]
    kills, disrupted = 0, None
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

        for worker in workers:
            worker.wait_ready()
        started = time.monotonic()

        # The store is disrupted while orders are in flight (after the second kill), and
        # always: the loop does not end before it, however fast the orders go.
        def in_flight() -> bool:
            return not all(f.done.is_set() for f in followers)

        while disrupted is None or (time.monotonic() - started < chaos_seconds and in_flight()):
            time.sleep(random.uniform(0.5, 1.5))
            victim = random.randrange(len(workers))
            workers[victim].kill()
            kills += 1
            workers[victim] = WorkerProcess.start(
                env, concurrency=2, log_file=tmp_path / f"w{victim}.log"
            )
            # The next kill comes a random while after the replacement is ready, however
            # slowly workers start on this machine. Otherwise, on a slow machine no worker
            # lives long enough to finish a step: an order's resumed step is killed again
            # and again, which the strike rule rightly reads as a step that kills its
            # worker (RECOVERY_EXHAUSTED), and the test measures the machine.
            workers[victim].wait_ready()
            if disrupted is None and kills >= 2:
                disrupted = store.disrupt(web.url, orders[0])

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
            "orders": len(orders), "kills": kills, "disruption": store.kind,
            "cluster": placement.clustered(), "whmcs_duplicates": len(duplicates),
            "stuck": len(stuck), "longest_gap_seconds": round(longest_gap, 2),
        }) + "\n")  # fmt: skip

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
    return bool(disrupted)


def _longest_gap(history: list[dict]) -> float:
    """The longest time the order went without an event (how long a recovery took)."""
    from notifier.events import parse_timestamp

    times = [parse_timestamp(e["timestamp"]) or 0.0 for e in history]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)
