"""A deliberately naive fulfillment chain: the pipeline benchmark's baseline (issue #14).

Three Celery tasks chained with `celery.chain`, each one HTTP call and one Redis PUBLISH:
(1) PATCH the Salesforce Order's activation status to Activating, (2) WHMCS AddOrder,
(3) PATCH it to Completed. No history, no state, no idempotency, no recovery, no ownership:
what a first version of the pipeline would be, and what ours (which guarantees section 8)
is compared with. Its own Celery app and queue (`<namespace>.naive`), so it never takes our
tasks; the same broker, `task_acks_late`, no task events, no result backend, JSON, prefetch
1, the pool and concurrency the benchmark gives ours.

    celery --app bench.naive worker --pool prefork --concurrency 4

Each worker process logs in once (OAuth client credentials) and keeps one `requests.Session`
per system. The PUBLISHes go to `<namespace>:naive` on the event store (`REDIS_URL`), as
`{"orderId", "stage", "timestamp"}` (seconds since the epoch, float).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests
from celery import Celery, chain

import settings
from integrations.settings import salesforce_settings, whmcs_settings
from integrations.whmcs import encode_form, php_serialized_map
from tests.workers import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent


def queue_name(namespace: str | None = None) -> str:
    return f"{namespace or settings.current().namespace}.naive"


def channel(namespace: str | None = None) -> str:
    return f"{namespace or settings.current().namespace}:naive"


def _config() -> dict[str, Any]:
    current = settings.current()
    return {
        "broker_url": current.broker.url,
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": queue_name(current.namespace),
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "task_serializer": "json",
        "accept_content": ["json"],
    }


app = Celery("naive", set_as_current=False)
app.conf.update(_config())


def configure() -> None:
    """Read the broker and namespace again (the benchmark process imports this module before
    its scenario picks the broker); before anything is sent."""
    app.conf.update(_config())


# --- one set of clients per worker process ----------------------------------------------


@dataclass
class _Clients:
    salesforce: requests.Session
    whmcs: requests.Session
    redis: redis.Redis
    order_url: str
    status_field: str
    ca_file: str | bool
    timeout: float
    whmcs_url: str
    whmcs_auth: dict[str, str]
    payment_method: str
    billing_cycle: str
    order_field_id: int
    channel: str


_clients: dict[int, _Clients] = {}
_lock = threading.Lock()


def _here() -> _Clients:
    """This process's clients (prefork children each make their own, on first use)."""
    pid = os.getpid()
    clients = _clients.get(pid)
    if clients is None:
        with _lock:
            clients = _clients.get(pid) or _connect()
            _clients[pid] = clients
    return clients


def _connect() -> _Clients:
    current = settings.current()
    sf = salesforce_settings(current.salesforce)
    wh = whmcs_settings(current.whmcs)
    verify: str | bool = sf.ca_bundle or True
    session = requests.Session()
    answer = session.post(
        f"{sf.login_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(sf.client_id, sf.client_secret),
        verify=verify,
        timeout=sf.timeout,
    )
    answer.raise_for_status()
    token = answer.json()
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    auth = {"identifier": wh.identifier, "secret": wh.secret}
    if wh.access_key:
        auth["accesskey"] = wh.access_key
    return _Clients(
        salesforce=session,
        whmcs=requests.Session(),
        redis=redis.Redis.from_url(current.redis.url),
        order_url=f"{token['instance_url']}/services/data/v{sf.api_version}/sobjects/Order",
        status_field=sf.status_field,
        ca_file=verify,
        timeout=sf.timeout,
        whmcs_url=f"{wh.url}/includes/api.php",
        whmcs_auth=auth,
        payment_method=wh.payment_method,
        billing_cycle=wh.billing_cycle,
        order_field_id=wh.order_field_id,
        channel=channel(current.namespace),
    )


def _set_status(clients: _Clients, order_id: str, status: str) -> None:
    clients.salesforce.patch(
        f"{clients.order_url}/{order_id}",
        json={clients.status_field: status},
        verify=clients.ca_file,
        timeout=clients.timeout,
    ).raise_for_status()


def _publish(clients: _Clients, order_id: str, stage: str) -> None:
    payload = {"orderId": order_id, "stage": stage, "timestamp": time.time()}
    clients.redis.publish(clients.channel, json.dumps(payload))


# --- the chain ---------------------------------------------------------------------------


@app.task(name="naive.activate")
def activate(order_id: str) -> None:
    clients = _here()
    _set_status(clients, order_id, "Activating")
    _publish(clients, order_id, "activating")


@app.task(name="naive.provision")
def provision(order_id: str, client_id: int, product_id: int) -> None:
    clients = _here()
    form = encode_form({
        "action": "AddOrder", "responsetype": "json", **clients.whmcs_auth,
        "clientid": client_id, "paymentmethod": clients.payment_method, "pid": [product_id],
        "qty": [1], "billingcycle": [clients.billing_cycle],
        "customfields": [php_serialized_map({clients.order_field_id: order_id})],
        "noemail": True,
    })  # fmt: skip
    answer = clients.whmcs.post(clients.whmcs_url, data=form, timeout=clients.timeout)
    answer.raise_for_status()
    if answer.json().get("result") != "success":
        raise RuntimeError(f"WHMCS AddOrder: {answer.text[:200]}")
    _publish(clients, order_id, "provisioning")


@app.task(name="naive.complete")
def complete(order_id: str) -> None:
    clients = _here()
    _set_status(clients, order_id, "Completed")
    _publish(clients, order_id, "completed")


def send(order_id: str, client_id: int, product_id: int) -> None:
    """Queue one order's chain (from the benchmark process: its trigger)."""
    chain(
        activate.si(order_id), provision.si(order_id, client_id, product_id), complete.si(order_id)
    ).apply_async()


# --- the benchmark's side: a worker process, and the completions it publishes ------------


def start_worker(concurrency: int, log_file: Path, pool: str = "prefork") -> WorkerProcess:
    """`celery --app bench.naive worker` in its own process group, like ours (no task events;
    no gossip, no mingle, as ours runs), consuming only the naive queue."""
    command = [sys.executable, "-m", "celery", "--app", "bench.naive", "worker",
               "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING",
               "--queues", queue_name(), "--hostname", "naive@%h",
               "--without-gossip", "--without-mingle"]  # fmt: skip
    output = log_file.open("ab")
    process = subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ), stdout=output, stderr=output,
        start_new_session=True,
    )  # fmt: skip
    return WorkerProcess(process)


class Completions:
    """Subscribed (one connection) to the naive channel from construction to `close()`; the
    arrival time (`time.monotonic()`) of each order's `completed` message."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel())
        self._arrived: dict[str, float] = {}
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="naive-completions", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            message = self._pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            data = message["data"]
            if b'"completed"' not in data:
                continue
            now = time.monotonic()
            order_id = json.loads(data)["orderId"]
            with self._condition:
                self._arrived[order_id] = now
                self._condition.notify_all()

    def arrived(self, order_ids: Iterable[str]) -> dict[str, float]:
        with self._condition:
            return {o: self._arrived[o] for o in order_ids if o in self._arrived}

    def wait(self, order_ids: list[str], timeout: float = 600) -> dict[str, float]:
        """Until every order of `order_ids` completed (or `timeout`); their arrival times."""
        wanted = set(order_ids)
        deadline = time.monotonic() + timeout
        with self._condition:
            while not wanted <= self._arrived.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(min(left, 1.0))
            return {o: self._arrived[o] for o in order_ids if o in self._arrived}

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._client.close()


def run(
    completions: Completions,
    orders: list[tuple[str, int, int]],
    rate: float | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Send every order's chain (all at once, or open loop at `rate` per second from one
    thread) and wait for their completions; send and arrival times by order id."""
    sent: dict[str, float] = {}
    started = time.monotonic()
    for number, (order_id, client_id, product_id) in enumerate(orders):
        if rate:  # open loop: order n goes at n / rate seconds, whatever the others do
            time.sleep(max(0.0, started + number / rate - time.monotonic()))
        sent[order_id] = time.monotonic()
        send(order_id, client_id, product_id)
    arrived = completions.wait(list(sent), timeout=timeout)
    return {"sent": sent, "arrived": arrived}
