"""The event store on a real local Redis Cluster (3 masters; `TEST_REDIS_CLUSTER=1` runs):
the hub reads each node once, follows a slot that moves, and a primary killed under open
streams fails over to its replica without losing an event. Skipped on a single Redis."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
import redis

from notifier import keys, read_snapshot
from notifier.connection import cluster_client
from sandbox.redis_cluster import LocalCluster, available
from sandbox.redis_server import free_port
from streaming.hub import hub_client_name
from tests.helpers import unreplicated_commits, wait_until
from tests.sse import web_process

from .test_stream import new_order_id, open_stream, queued, retrying


@pytest.fixture
def service_headers(tokens) -> dict[str, str]:
    return tokens.headers(tokens.service())


@pytest.fixture(scope="module")
def web(local_cluster, sandbox):
    with web_process(SSE_HEARTBEAT_SECONDS="2") as web:
        yield web


def _hub_connections(cluster: LocalCluster) -> dict[int, int]:
    """Each node's count of connections the web process's hub holds."""
    counts = {}
    for node in cluster.nodes:
        listed = redis.Redis(port=node.port, decode_responses=True).client_list()
        counts[node.port] = sum(1 for c in listed if c.get("name") == hub_client_name())
    return counts


def _orders_on_every_node(cluster: LocalCluster, per_node: int = 3) -> list[str]:
    wanted: dict[int, list[str]] = {node.port: [] for node in cluster.nodes}
    while any(len(found) < per_node for found in wanted.values()):
        order_id = new_order_id()
        found = wanted[cluster.primary_of(keys.channel(order_id)).port]
        if len(found) < per_node:
            found.append(order_id)
    return [order_id for found in wanted.values() for order_id in found]


def test_the_hub_reads_each_node_on_one_connection(web, local_cluster, service_headers):
    orders = _orders_on_every_node(local_cluster)
    for order_id in orders:
        queued(order_id)
    streams = [open_stream(web, o, service_headers) for o in orders for _ in range(2)]
    for stream in streams:
        stream.until(lambda e: e.type == "order.snapshot")

    assert _hub_connections(local_cluster) == {node.port: 1 for node in local_cluster.nodes}
    sent = {order_id: retrying(order_id, 2) for order_id in orders}
    for stream, order_id in zip(streams, [o for o in orders for _ in range(2)], strict=True):
        assert stream.until(lambda e: e.type == "order.update")[-1].id == sent[order_id]
        stream.close()


def test_a_moved_slot_ends_its_streams_and_they_resume_with_nothing_lost(
    web, local_cluster, service_headers
):
    moving, staying = _two_orders_on_one_node(local_cluster)
    for order_id in (moving, staying):
        queued(order_id)
    stream = open_stream(web, moving, service_headers)
    snapshot = stream.until(lambda e: e.type == "order.snapshot")[-1]
    neighbour = open_stream(web, staying, service_headers)
    neighbour.until(lambda e: e.type == "order.snapshot")
    source = local_cluster.primary_of(keys.channel(moving))
    target = next(n for n in local_cluster.nodes if n.port != source.port)

    local_cluster.move_slot(_slot(keys.channel(moving)), target)
    ending = list(stream.events())

    assert ending[-1].type == "stream.end" and ending[-1].json["reason"] == "redis-unavailable"
    missed = retrying(moving, 2)  # committed on the node that serves the slot now
    resumed = open_stream(web, moving, {**service_headers, "Last-Event-ID": snapshot.id})
    assert resumed.until(lambda e: e.type == "order.update")[-1].id == missed
    # The other order's channel, on the node the slot left, was not disturbed.
    unmoved = retrying(staying, 2)
    assert neighbour.until(lambda e: e.type == "order.update")[-1].id == unmoved
    for connection in (resumed, neighbour):
        connection.close()


def _slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def _two_orders_on_one_node(cluster: LocalCluster) -> tuple[str, str]:
    first = new_order_id()
    node = cluster.primary_of(keys.channel(first))
    while True:
        second = new_order_id()
        same_node = cluster.primary_of(keys.channel(second)).port == node.port
        if same_node and _slot(keys.channel(second)) != _slot(keys.channel(first)):
            return first, second


def test_a_client_starts_from_any_seed_that_answers(local_cluster):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = cluster_client(f"{dead}, {local_cluster.url}", decode_responses=True)
    assert client.ping(target_nodes=client.PRIMARIES)
    assert len(client.get_primaries()) == len(local_cluster.nodes)
    with pytest.raises(redis.exceptions.ConnectionError):  # a Redis down, as one Redis's is
        cluster_client(dead)


# --- failover --------------------------------------------------------------------------------


@pytest.fixture
def replicated(local_cluster, stack_variables) -> Iterator[LocalCluster]:
    """A cluster of its own, 3 primaries with a replica each, for this process and the
    processes the test starts."""
    missing = available()
    if missing:
        pytest.skip(missing)
    cluster = LocalCluster(masters=3, replicas=1).start()
    stack_variables(REDIS_URL=cluster.url, REDIS_CLUSTER="1")
    yield cluster
    cluster.stop()


def test_a_killed_primary_fails_over_and_streams_resume_by_id(replicated, sandbox, tokens):
    headers = tokens.headers(tokens.service())
    order_id = new_order_id()
    queued(order_id)
    with web_process(SSE_HEARTBEAT_SECONDS="2", REDIS_URL=replicated.url) as web:
        stream = open_stream(web, order_id, headers)
        snapshot = stream.until(lambda e: e.type == "order.snapshot")[-1]
        primary = replicated.primary_of(keys.channel(order_id))

        primary.stop(kill=True)
        ending = list(stream.events())
        assert ending[-1].type == "stream.end"
        assert ending[-1].json["reason"] == "redis-unavailable"
        missed = _publish_once_promoted(order_id)
        # The node asked may not have heard of the vote yet (gossip): ask until it has.
        wait_until(lambda: replicated.primary_of(keys.channel(order_id)).port != primary.port)

        first = _reconnect(web, order_id, {**headers, "Last-Event-ID": snapshot.id})
        assert first.type == "order.update" and first.id == missed
    history = read_snapshot(order_id).body["history"]
    assert [e["stage"] for e in history] == ["queued", "retrying"]


def test_a_commit_waits_for_its_replica_and_counts_when_it_does_not_answer(
    replicated, stack_variables
):
    stack_variables(REDIS_WAIT_REPLICAS="1", REDIS_WAIT_TIMEOUT_MS="200")
    order_id = new_order_id()
    before = unreplicated_commits()
    queued(order_id)
    assert unreplicated_commits() == before  # the replica acknowledged it
    replica = replicated.replica_of(replicated.primary_of(keys.channel(order_id)))
    replica.process.send_signal(signal.SIGSTOP)  # alive, but acknowledging nothing
    try:
        retrying(order_id, 2)
    finally:
        replica.process.send_signal(signal.SIGCONT)
    assert unreplicated_commits() == before + 1
    history = read_snapshot(order_id).body["history"]
    assert [e["stage"] for e in history] == ["queued", "retrying"]


def _reconnect(web, order_id: str, headers: dict[str, str], timeout: float = 30):
    """Open the stream as EventSource does, again after each end without an event (a 200
    with only `retry:` while the web process finds where the slot went); its first event."""
    deadline = time.monotonic() + timeout
    while True:
        stream = open_stream(web, order_id, headers)
        try:
            return stream.until(lambda e: e.type in ("order.update", "order.snapshot"))[-1]
        except EOFError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the stream's retry: hint
        finally:
            stream.close()


def _publish_once_promoted(order_id: str, timeout: float = 30) -> str:
    """Publish the order's next update as soon as its slot has a primary again (the replica,
    once the cluster voted it in)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return retrying(order_id, 2)
        except redis.exceptions.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
