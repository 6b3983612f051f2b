"""Small test helpers: token minting, waiting on an order without sleeping blindly, reading
metrics."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app.auth import SERVICE_SCOPE, mint_token
from notifier import is_terminal
from notifier.state import wait_for_events
from settings import WebSettings


class Tokens:
    """Mint customer and service JWTs with the app's configured key."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings

    def service(self, scope: str = SERVICE_SCOPE, ttl: int = 600) -> str:
        return mint_token(self.settings, account_id=None, scope=scope, ttl=ttl, subject="svc")

    def customer(self, account_id: str, ttl: int = 600) -> str:
        return mint_token(self.settings, account_id=account_id, scope=None, ttl=ttl)

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def wait_for_terminal(order_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every update of the order until (and including) a terminal one."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    last_id = "0"
    while time.monotonic() < deadline:
        for event_id, payload in wait_for_events(order_id, last_id, timeout_ms=200):
            last_id = event_id
            events.append(payload)
            if is_terminal(payload["stage"]):
                return events
    raise AssertionError(f"order {order_id} did not finish in {timeout}s: {events}")


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text, summed over the labels not given."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total, found = total + float(match.group(3)), True
    return total if found else 0.0


@contextmanager
def commands_sent() -> Iterator[list[str]]:
    """The commands clients sent to Redis during the block, as Redis's MONITOR saw them (those
    a script ran inside itself left out: a script call is one command; so is a new
    connection's handshake, which a pooled connection pays once). Only commands naming this
    run's keys count: other processes may share the Redis."""
    import settings

    servers = redis_servers()  # on a cluster, each primary sees the commands of its slots
    marker = f"end-of-block-{uuid.uuid4().hex}"
    namespace = f"{settings.current().namespace}:"
    sent: list[str] = []
    seen: list[tuple[float, str]] = []  # (when the server ran it, the command)
    watching = [threading.Event() for _ in servers]

    def watch(server: Any, ready: threading.Event) -> None:
        with server.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if marker in command["command"]:
                    return
                text = command["command"]
                if command.get("client_type") != "lua" and namespace in text:
                    seen.append((command["time"], text))

    watchers = [threading.Thread(target=watch, args=pair, daemon=True)
                for pair in zip(servers, watching, strict=True)]  # fmt: skip
    for watcher in watchers:
        watcher.start()
    for ready in watching:
        ready.wait(5)
    try:
        yield sent
    finally:
        for server, watcher in zip(servers, watchers, strict=True):
            server.echo(marker)
            watcher.join(5)
        # Each primary's watcher hears its own commands at its own pace: order them by the
        # time the servers (one clock, one machine) ran them.
        sent.extend(text for _, text in sorted(seen, key=lambda pair: pair[0]))


def redis_servers() -> list[Any]:
    """A client of each server of the event store: the one Redis, or each cluster primary."""
    from notifier import placement
    from notifier.connection import get_redis

    client: Any = get_redis()
    if placement.clustered():
        return [node.redis_connection for node in client.get_primaries()]
    return [client]


def connected_clients() -> int:
    """Connections the event store's servers count, all of them."""
    return sum(int(server.info("clients")["connected_clients"]) for server in redis_servers())


def kill_clients(name: str) -> int:
    """Close every connection called `name` on the event store's servers; how many."""
    killed = 0
    for server in redis_servers():
        for listed in server.client_list():
            if listed.get("name") == name:
                server.client_kill_filter(_id=listed["id"])
                killed += 1
    return killed


def subscribers(channels: list[str]) -> int:
    """How many connections Redis counts on `channels` (shard channels, each asked of the node
    serving it, on a cluster)."""
    from notifier import placement
    from notifier.connection import get_redis

    client: Any = get_redis()
    if not placement.clustered():
        return sum(int(n) for _, n in client.pubsub_numsub(*channels)) if channels else 0
    total = 0
    for channel in channels:
        node = client.get_node_from_key(channel)
        reply = node.redis_connection.execute_command("PUBSUB SHARDNUMSUB", channel)
        pairs = reply if reply and isinstance(reply[0], list | tuple) else [reply]
        total += sum(int(count) for _, count in pairs)
    return total


@contextmanager
def listening(channel: str) -> Iterator[Any]:
    """A pub/sub connection subscribed to `channel` (SSUBSCRIBEd at the node serving it, on a
    cluster), its confirmation read."""
    from notifier import placement
    from notifier.connection import get_redis

    client: Any = get_redis()
    if placement.clustered():
        node = client.get_node_from_key(channel)
        pubsub = node.redis_connection.pubsub()
        pubsub.ssubscribe(channel)
    else:
        pubsub = client.pubsub()
        pubsub.subscribe(channel)
    try:
        pubsub.get_message(timeout=2)  # the confirmation
        yield pubsub
    finally:
        pubsub.close()


def unreplicated_commits() -> float:
    """This process's count of commits too few replicas acknowledged (`REDIS_WAIT_REPLICAS`)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("fulfillment_redis_unreplicated_commits_total") or 0.0
