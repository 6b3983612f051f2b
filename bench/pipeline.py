"""pipeline: orders end to end through the web trigger, a real worker and the sandbox, at 0 ms
and at 50 ms emulated latency per external call.

Two runs per latency. A flood (every order triggered at once) measures throughput: orders per
second from the first `queued` to the last `completed` event (the events' own timestamps).
A paced run (orders triggered at a steady rate well below that throughput) measures latency:
trigger-to-`completed` p50/p99 for an order that does not wait behind a backlog. Also: the
cost per order in Redis commands (broker, events, state: everything) and Salesforce API calls
(as the sandbox counts them, like a real org's API limit), and CPU time per order by process,
which shows where the machine's cores go.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

import settings
from app.auth import mint_token
from integrations import SalesforceGateway
from notifier import keys, read_snapshot
from notifier.connection import get_redis
from notifier.events import parse_timestamp
from sandbox.client import SandboxClient
from tests.sse import start_web
from tests.workers import WorkerProcess

from .environment import private_sandbox
from .percentiles import in_milliseconds
from .profile import profiled

#: Worker processes: two per core when the calls are instant (the work is CPU), more when
#: every call waits on the network (the work is waiting).
CONCURRENCY = {
    0: int(os.environ.get("BENCH_WORKER_CONCURRENCY") or 4),
    50: int(os.environ.get("BENCH_WORKER_CONCURRENCY_50MS") or 16),
}
#: The worker's pool: prefork is what the Procfile runs (a crash kills one task, not all).
POOL = os.environ.get("BENCH_WORKER_POOL") or "prefork"
#: Orders per second in the latency run, at most (and at most half the measured throughput).
PACED_RATE = float(os.environ.get("BENCH_PACED_RATE") or 20)


def run(orders: int = 1_000) -> dict[str, Any]:
    with private_sandbox() as sandbox:
        client = SandboxClient.from_environment()
        return {
            "parameters": {
                "orders": orders,
                "worker_pool": POOL,
            },
            "latency_0ms": measure(client, sandbox.pid, orders, latency_ms=0),
            "latency_50ms": measure(client, sandbox.pid, max(50, orders // 4), latency_ms=50),
        }


def measure(sandbox: SandboxClient, sandbox_pid: int, orders: int, latency_ms: int) -> dict:
    sandbox.clear_faults()
    if latency_ms:
        for system in ("salesforce", "whmcs"):
            sandbox.fault(system, "*", latencyMs=latency_ms)
    web = start_web(quiet=True, WEB_CONCURRENCY="1")
    # Its output goes to a file: stdout carries one JSON line per scenario and nothing else.
    log_file = Path(os.environ["SANDBOX_DIR"]) / f"worker-{latency_ms}ms.log"
    worker = WorkerProcess.start(
        dict(os.environ), concurrency=CONCURRENCY[latency_ms], log_file=log_file, pool=POOL
    )
    token = mint_token(settings.current().web, account_id=None, scope="orders:fulfill", ttl=3600)
    processes = {
        "web": web.process.pid,
        "worker": worker.process.pid,
        "sandbox": sandbox_pid,
        "redis": _redis_pid(),
    }
    try:
        _complete(web.url, token, [sandbox.create_order()["orderId"]])  # warm up: logins, pools
        flood = [sandbox.create_order()["orderId"] for _ in range(orders)]
        before = _counters(flood[0], processes)
        with profiled(worker.process.pid, f"pipeline-{latency_ms}ms-worker", subprocesses=True):
            _complete(web.url, token, flood)
        after = _counters(flood[0], processes)
        flooded = _timings(flood)
        # Paced well below the throughput just measured, so no order waits behind a backlog.
        rate = min(PACED_RATE, flooded["orders_per_second"] / 2)
        paced = [sandbox.create_order()["orderId"] for _ in range(max(20, orders // 5))]
        _complete(web.url, token, paced, rate=rate)
    finally:
        worker.stop()
        web.stop()
    return {
        "emulated_latency_ms": latency_ms,
        "worker_concurrency": CONCURRENCY[latency_ms],
        "flood": flooded,
        "paced": {**_timings(paced), "rate_per_second": round(rate, 1)},
        "per_order": _per_order(before, after, orders),
    }


def _counters(any_order: str, processes: dict[str, int]) -> dict[str, float]:
    """Redis commands so far, Salesforce API calls so far, CPU seconds so far by process."""
    cpu = {f"cpu_{name}": _cpu_seconds(pid) for name, pid in processes.items()}
    return {"redis_commands": _redis_commands(), "salesforce": _salesforce_calls(any_order), **cpu}


def _per_order(before: dict[str, float], after: dict[str, float], orders: int) -> dict:
    spent = {key: after[key] - before[key] for key in before}
    return {
        "redis_commands": round(spent["redis_commands"] / orders, 1),
        # minus 1: reading the counter is itself an API call
        "salesforce_api_calls": round((spent["salesforce"] - 1) / orders, 2),
        "cpu_ms": {
            key[4:]: round(value * 1000 / orders, 2)
            for key, value in spent.items()
            if key.startswith("cpu_")
        },
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's and Celery's workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in (root, *root.children(recursive=True)):
            times = process.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def _redis_pid() -> int:
    return int(get_redis().info("server")["process_id"])


def _complete(web_url: str, token: str, order_ids: list[str], rate: float | None = None) -> None:
    """Trigger every order over HTTP (all at once, 32 in flight; or `rate` per second) and
    wait until none is active."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()

    def trigger(numbered: tuple[int, str]) -> None:
        number, order_id = numbered
        if rate:  # open loop: order n goes at n / rate seconds, whatever the others do
            time.sleep(max(0.0, started + number / rate - time.monotonic()))
        session.post(
            f"{web_url}/api/orders/{order_id}/fulfill", headers=headers, timeout=30
        ).raise_for_status()

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(trigger, enumerate(order_ids)))
    deadline = time.monotonic() + 600
    while get_redis().zcard(keys.active_orders_key()) and time.monotonic() < deadline:
        time.sleep(0.2)


def _timings(order_ids: list[str]) -> dict[str, Any]:
    spans, firsts, lasts, outcomes = [], [], [], {"completed": 0, "failed": 0}
    for order_id in order_ids:
        snapshot = read_snapshot(order_id)
        history = snapshot.body["history"] if snapshot else []
        if not history:
            outcomes["missing"] = outcomes.get("missing", 0) + 1
            continue
        queued, last = (
            parse_timestamp(history[0]["timestamp"]),
            parse_timestamp(history[-1]["timestamp"]),
        )
        outcomes[history[-1]["stage"]] = outcomes.get(history[-1]["stage"], 0) + 1
        if queued is not None and last is not None:
            spans.append(last - queued)
            firsts.append(queued)
            lasts.append(last)
    latency = in_milliseconds(spans)
    return {
        "outcomes": outcomes,
        "orders_per_second": round(len(order_ids) / (max(lasts) - min(firsts)), 1),
        "trigger_to_completed_ms": {key: latency[key] for key in ("p50", "p99", "max")},
    }


def _redis_commands() -> int:
    stats = get_redis().info("commandstats")
    return sum(int(value["calls"]) for value in stats.values())


def _salesforce_calls(any_order: str) -> int:
    """The sandbox's API usage counter, read from one call's Sforce-Limit-Info."""
    gateway = SalesforceGateway()
    gateway.get_order(any_order)
    usage = gateway._session().api_usage.get("api-usage")
    return int(usage.used) if usage else 0
