"""pipeline: orders end to end through the web trigger, a real worker and the sandbox, at 0 ms
and at 50 ms emulated latency per external call, beside a naive three-task Celery chain
(`bench.naive`) run against the same sandbox and broker in the same invocation.

The Celery broker gets a redis-server of its own (the event store stays on `REDIS_URL`), so
the commands of each can be counted apart.

Per latency, ours and the naive chain alternate so that the machine's noise hits both:
1. floods, naive, ours, ours, naive (so that a machine speeding up or slowing down weighs
   on both sides alike): every order of a flood sent at once; throughput in orders per
   second, a side's orders over the sum of its floods' spans. Ours: a flood spans from its
   first `queued` to its last `completed` event (the events' own timestamps). Naive: from
   the first chain sent to the last `completed` PUBLISH received by the benchmark.
   Cost per order over the floods: Redis commands executed on each server (`INFO
   commandstats`: inside scripts included), Salesforce API calls (the sandbox's count, like a
   real org's API limit), CPU time by process.
2. paced, ours then naive: orders sent open loop at a steady rate well below our throughput
   (the same rate for both); trigger-to-`completed` p50/p99/max without a backlog.
3. cost sample (MONITOR, which costs CPU, so never during 1 or 2; `bench.monitor`): an idle
   window first (both workers and the web running, nothing sent), then a small paced run of
   ours, then of the naive chain; commands as clients send them on each server, those run
   inside Lua scripts apart, less the idle window's background (heartbeats, BRPOP timeouts,
   the reconciler) at its rate over each run's window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis
import requests

import settings
from app.auth import mint_token
from notifier import keys, read_snapshot
from notifier.connection import get_redis
from notifier.events import parse_timestamp
from sandbox.catalogue import CATALOGUE
from sandbox.client import SandboxClient
from sandbox.demo import DEFAULT_PRODUCTS
from sandbox.redis_server import RedisServer
from tests.sse import start_web
from tests.workers import WorkerProcess

from . import naive
from .cpu import cpu_seconds
from .environment import event_store_on_cluster, private_broker, private_sandbox
from .monitor import Monitor, Tally, client_address
from .percentiles import in_milliseconds
from .profile import profiled

#: Worker processes: two per core when the calls are instant (the work is CPU), more when
#: every call waits on the network (the work is waiting). The naive chain gets the same.
CONCURRENCY = {
    0: int(os.environ.get("BENCH_WORKER_CONCURRENCY") or 4),
    50: int(os.environ.get("BENCH_WORKER_CONCURRENCY_50MS") or 16),
}
#: The worker's pool: prefork is what the Procfile runs (a crash kills one task, not all).
POOL = os.environ.get("BENCH_WORKER_POOL") or "prefork"
#: Orders per second in the latency run, at most (and at most half the measured throughput).
PACED_RATE = float(os.environ.get("BENCH_PACED_RATE") or 20)
#: Orders per side in the MONITOR cost sample (paced at the paced run's rate).
COST_SAMPLE = int(os.environ.get("BENCH_COST_SAMPLE_ORDERS") or 100)
#: After a cost sample's last order completed: its last acknowledgements land.
SETTLE_SECONDS = 1.0
#: Commands per order at most (issue #14): end to end (broker with task events on + ours),
#: and ours alone (client-sent on the event store).
TARGET_COMMANDS_TOTAL, TARGET_COMMANDS_OURS = 60, 15
TARGET_THROUGHPUT_RATIO, TARGET_PACED_P99_MS, TARGET_PACED_RATE = 0.7, 50, 20
#: The floods of each latency, in this order (ABBA): each side's throughput is its floods'
#: orders over their summed spans, its cost their summed cost.
FLOOD_ORDER = ("naive", "ours", "ours", "naive")
#: What every sandbox order holds (`SandboxClient.create_order()` with no products).
PRODUCT_ID = next(o.pid for o in CATALOGUE if o.code == DEFAULT_PRODUCTS[0])


def run(orders: int = 1_000) -> dict[str, Any]:
    with private_broker() as broker, private_sandbox() as sandbox:
        naive.configure()
        client = SandboxClient.from_environment()
        results = {
            "latency_0ms": measure(client, sandbox.pid, broker, orders, latency_ms=0),
            "latency_50ms": measure(client, sandbox.pid, broker, max(50, orders // 4), 50),
        }
        on_cluster = _on_clusters(client, orders, results["latency_0ms"])
    return {
        "parameters": {
            "orders": orders,
            "worker_pool": POOL,
            "cost_sample_orders": COST_SAMPLE,
            "broker": "a second private redis-server (CELERY_BROKER_URL)",
        },
        **results,
        "targets": _targets(results["latency_0ms"]),
        **on_cluster,
    }


def measure(
    sandbox: SandboxClient, sandbox_pid: int, broker: RedisServer, orders: int, latency_ms: int
) -> dict:
    sandbox.clear_faults()
    if latency_ms:
        for system in ("salesforce", "whmcs"):
            sandbox.fault(system, "*", latencyMs=latency_ms)
    concurrency = CONCURRENCY[latency_ms]
    web = start_web(quiet=True, WEB_CONCURRENCY="1")
    # Output goes to files: stdout carries one JSON line per scenario and nothing else.
    logs = Path(os.environ["SANDBOX_DIR"])
    worker = WorkerProcess.start(
        dict(os.environ), concurrency=concurrency, log_file=logs / f"worker-{latency_ms}ms.log",
        pool=POOL,
    )  # fmt: skip
    naive_worker = naive.start_worker(concurrency, logs / f"naive-worker-{latency_ms}ms.log", POOL)
    completions = naive.Completions(settings.current().redis.url)
    token = mint_token(settings.current().web, account_id=None, scope="orders:fulfill", ttl=3600)
    assert broker.process is not None
    shared = {
        "sandbox": sandbox_pid,
        "redis_events": _redis_pid(),
        "redis_broker": broker.process.pid,
    }
    ours_processes = {"web": web.process.pid, "worker": worker.process.pid, **shared}
    naive_processes = {"worker": naive_worker.process.pid, **shared, "sender": os.getpid()}
    try:
        # Warm up both: logins, pools, a task through every worker process or so.
        _complete(web.url, token, _new_orders(sandbox, concurrency))
        _naive_warm_up(completions, _naive_orders(sandbox, concurrency), naive_worker)

        # 1. floods, naive, ours, ours, naive: a machine that speeds up or slows down over
        # the minute they take weighs on both sides alike (one flood each gave ratios from
        # 0.60 to 0.77 on the same code, 12-02 and 12-03).
        naive_floods: list[dict[str, Any]] = []
        ours_floods: list[list[str]] = []
        naive_spent: list[dict[str, float]] = []
        ours_spent: list[dict[str, float]] = []
        for side in FLOOD_ORDER:
            if side == "naive":
                naive_flood = _naive_orders(sandbox, orders)
                before = _counters(sandbox, naive_processes)
                naive_floods.append(naive.run(completions, naive_flood))
                naive_spent.append(_spent(before, _counters(sandbox, naive_processes)))
                continue
            flood = _new_orders(sandbox, orders)
            before = _counters(sandbox, ours_processes)
            name, first = f"pipeline-{latency_ms}ms", not ours_floods  # profiled: the first
            with (
                profiled(worker.process.pid, f"{name}-worker", subprocesses=True, this_time=first),
                profiled(web.process.pid, f"{name}-web", subprocesses=True, this_time=first),
            ):
                _complete(web.url, token, flood)
            ours_spent.append(_spent(before, _counters(sandbox, ours_processes)))
            ours_floods.append(flood)
        ours_cost = _per_order(ours_spent, orders * len(ours_floods))
        naive_cost = _per_order(naive_spent, orders * len(naive_floods))
        flooded = _timings(*ours_floods)

        # 2. paced: ours, then naive at the same rate. At 0 ms, the target's rate (issue #14:
        # p99 at 20 orders/s); at 50 ms, well below the throughput just measured (no order
        # waits behind a backlog).
        rate = PACED_RATE if latency_ms == 0 else min(PACED_RATE, flooded["orders_per_second"] / 2)
        paced_count = max(20, orders // 5)
        paced = _new_orders(sandbox, paced_count)
        naive_paced = _naive_orders(sandbox, paced_count)
        _complete(web.url, token, paced, rate=rate)
        naive_paced_run = naive.run(completions, naive_paced, rate=rate)

        # 3. cost sample with MONITOR: idle, ours, naive.
        ours_sample, naive_sample = _cost_sample(sandbox, web.url, token, completions, rate)
    finally:
        completions.close()
        naive_worker.stop()
        worker.stop()
        web.stop()
    ours = {
        "flood": {**flooded, "cpu_share": _cpu_share(ours_cost, flooded)},
        "paced": {**_timings(paced), "rate_per_second": round(rate, 1)},
        "per_order": ours_cost,
        "redis_commands": ours_sample,
    }
    naive_timings = _naive_timings(naive_floods, orders)
    baseline = {
        "flood": {**naive_timings, "cpu_share": _cpu_share(naive_cost, naive_timings)},
        "paced": {
            **_naive_timings([naive_paced_run], paced_count),
            "rate_per_second": round(rate, 1),
        },
        "per_order": naive_cost,
        "redis_commands": naive_sample,
    }
    return {
        "emulated_latency_ms": latency_ms,
        "worker_concurrency": concurrency,
        **ours,
        "naive": baseline,
        "ratio_to_naive": _ratios(ours, baseline),
    }


# --- ours with the event store on a cluster ---------------------------------------------------

#: The variants beside the single Redis: a 3-master cluster; the same with a replica per
#: master and each commit waiting for it (`REDIS_WAIT_REPLICAS=1`: what failover without
#: loss of acknowledged writes costs).
CLUSTER_VARIANTS = {"cluster": (0, "0"), "cluster_wait": (1, "1")}


def _on_clusters(sandbox: SandboxClient, orders: int, single: dict) -> dict[str, Any]:
    """Ours at 0 ms on each of `CLUSTER_VARIANTS` (None where no cluster can start), and its
    ratios to ours on the single Redis (`single`, this run's `latency_0ms`)."""
    found: dict[str, Any] = {}
    for name, (replicas, wait) in CLUSTER_VARIANTS.items():
        with event_store_on_cluster(replicas, REDIS_WAIT_REPLICAS=wait) as cluster:
            rate = single["paced"]["rate_per_second"]
            figures = _ours_alone(sandbox, orders, rate, cluster) if cluster else None
        found[name] = figures
        found[f"{name}_ratios"] = _cluster_ratios(figures, single) if figures else None
    return found


def _ours_alone(sandbox: SandboxClient, orders: int, rate: float, cluster: Any) -> dict[str, Any]:
    """Flood and paced runs of ours alone (as in `measure`, at 0 ms), and CPU per order: the
    worker's, and the cluster nodes' (all of them, and the busiest one's)."""
    sandbox.clear_faults()  # the last `measure` left its emulated latency on
    concurrency = CONCURRENCY[0]
    web = start_web(quiet=True, WEB_CONCURRENCY="1")
    logs = Path(os.environ["SANDBOX_DIR"])
    worker = WorkerProcess.start(
        dict(os.environ), concurrency=concurrency, log_file=logs / "worker-cluster.log", pool=POOL
    )
    token = mint_token(settings.current().web, account_id=None, scope="orders:fulfill", ttl=3600)
    try:
        _complete(web.url, token, _new_orders(sandbox, concurrency))  # warm up
        flood = _new_orders(sandbox, orders)
        pids = [worker.process.pid] + [n.process.pid for n in cluster.nodes if n.process]
        cpu_before = [cpu_seconds(pid) for pid in pids]
        _complete(web.url, token, flood)
        worker_cpu, *nodes_cpu = (
            cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)
        )
        paced = _new_orders(sandbox, max(20, orders // 5))
        _complete(web.url, token, paced, rate=rate)
    finally:
        worker.stop()
        web.stop()
    return {
        "flood": _timings(flood),
        "paced": {**_timings(paced), "rate_per_second": round(rate, 1)},
        "worker_cpu_ms_per_order": round(worker_cpu * 1000 / orders, 1),
        "redis_cpu_ms_per_order": round(sum(nodes_cpu) * 1000 / orders, 2),
        "busiest_node_cpu_ms_per_order": round(max(nodes_cpu) * 1000 / orders, 2),
        "nodes": len(nodes_cpu),
    }


def _cluster_ratios(cluster: dict[str, Any], single: dict[str, Any]) -> dict[str, float | None]:
    def p99(side: dict[str, Any]) -> float | None:
        return side["paced"]["trigger_to_completed_ms"]["p99"]

    return {
        "flood_orders_per_second": _ratio(
            cluster["flood"]["orders_per_second"], single["flood"]["orders_per_second"]
        ),
        "paced_p99": _ratio(p99(cluster), p99(single)),
        "cpu_worker": _ratio(
            cluster["worker_cpu_ms_per_order"], single["per_order"]["cpu_ms"]["worker"]
        ),
    }


# --- orders --------------------------------------------------------------------------------


def _new_orders(sandbox: SandboxClient, count: int) -> list[str]:
    return [sandbox.create_order()["orderId"] for _ in range(count)]


def _naive_orders(sandbox: SandboxClient, count: int) -> list[tuple[str, int, int]]:
    """Fresh sandbox orders with what the naive chain's WHMCS call needs: the account's WHMCS
    client id (read through the sandbox's control API, which is no Salesforce API call) and
    the product's WHMCS id."""
    made = []
    for _ in range(count):
        order = sandbox.create_order()
        account = sandbox.http.get(
            f"{sandbox.urls['salesforce']}/__sandbox/accounts/{order['accountId']}",
            verify=sandbox.ca_file,
            timeout=sandbox.timeout,
        )
        account.raise_for_status()
        made.append((order["orderId"], int(account.json()["WHMCS_Client_Id__c"]), PRODUCT_ID))
    return made


def _naive_warm_up(
    completions: naive.Completions, orders: list[tuple[str, int, int]], worker: WorkerProcess
) -> None:
    done = naive.run(completions, orders, timeout=120)
    if len(done["arrived"]) < len(orders) or not worker.alive():
        raise RuntimeError("the naive worker did not complete its warm-up (see its log)")


# --- triggering ours and timing both ---------------------------------------------------------


def _complete(
    web_url: str,
    token: str,
    order_ids: list[str],
    rate: float | None = None,
    poller: redis.Redis | None = None,
) -> None:
    """Trigger every order over HTTP (all at once, 32 in flight; or `rate` per second) and
    wait until none is active (asking `poller`, default the shared client)."""
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
    client = poller or get_redis()
    deadline = time.monotonic() + 600
    while client.zcard(keys.active_orders_key()) and time.monotonic() < deadline:
        time.sleep(0.2)


def _timings(*runs: list[str]) -> dict[str, Any]:
    """Outcomes, throughput and trigger → `completed` latency of ours over `runs` (each a
    list of order ids run together): throughput is all their orders over the sum of each
    run's span from its first `queued` to its last event; each run's own throughput too."""
    spans: list[float] = []
    outcomes = {"completed": 0, "failed": 0}
    seconds, each = 0.0, []
    for order_ids in runs:
        firsts, lasts = [], []
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
        span = max(lasts) - min(firsts)
        seconds += span
        each.append(round(len(order_ids) / span, 1))
    return _throughput(sum(map(len, runs)), seconds, each, outcomes, spans)


def _naive_timings(runs: list[dict[str, dict[str, float]]], count: int) -> dict[str, Any]:
    """The same for the naive chain's `runs` of `count` orders each: send → arrival of the
    `completed` PUBLISH at the benchmark, per order."""
    spans: list[float] = []
    seconds, each, arrivals = 0.0, [], 0
    for result in runs:
        sent, arrived = result["sent"], result["arrived"]
        spans += [arrived[o] - sent[o] for o in arrived]
        span = max(arrived.values(), default=0.0) - min(sent.values(), default=0.0)
        seconds += max(span, 0.0)
        arrivals += len(arrived)
        each.append(round(len(arrived) / span, 1) if span > 0 else None)
    outcomes = {"completed": arrivals, "missing": count * len(runs) - arrivals}
    return _throughput(arrivals, seconds, each, outcomes, spans)


def _throughput(
    orders: int, seconds: float, each: Sequence[float | None], outcomes: dict[str, int],
    spans: list[float],
) -> dict[str, Any]:  # fmt: skip
    latency = in_milliseconds(spans)
    return {
        "outcomes": outcomes,
        "orders_per_second": round(orders / seconds, 1) if seconds > 0 else None,
        "orders_per_second_each_run": list(each),
        "trigger_to_completed_ms": {key: latency[key] for key in ("p50", "p99", "max")},
    }


# --- cost over the flood: commandstats, Salesforce's count, CPU -------------------------------


def _counters(sandbox: SandboxClient, processes: dict[str, int]) -> dict[str, float]:
    """Redis commands executed so far on each server, Salesforce API calls so far, CPU
    seconds so far by process."""
    cpu = {
        f"cpu_{name}": cpu_seconds(pid, children=name != "sender")
        for name, pid in processes.items()
    }
    return {
        "redis_events": _redis_commands(settings.current().redis.url),
        "redis_broker": _redis_commands(settings.current().broker.url),
        "salesforce": sandbox.api_calls(),  # the control API: not itself an API call
        **cpu,
    }


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before}


def _per_order(runs: list[dict[str, float]], orders: int) -> dict:
    """What `runs` (`_spent` of each) cost per order, `orders` in all."""
    spent = {key: sum(run[key] for run in runs) for key in runs[0]}
    events, broker = spent["redis_events"], spent["redis_broker"]
    return {
        # Every command each server executed (INFO commandstats): inside scripts included.
        "redis_commands_executed": {
            "total": round((events + broker) / orders, 1),
            "event_store": round(events / orders, 1),
            "broker": round(broker / orders, 1),
        },
        "salesforce_api_calls": round(spent["salesforce"] / orders, 2),
        "cpu_ms": {
            key[4:]: round(value * 1000 / orders, 2)
            for key, value in spent.items()
            if key.startswith("cpu_")
        },
    }


def _redis_pid() -> int:
    return int(get_redis().info("server")["process_id"])


def _redis_commands(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
        return sum(int(value["calls"]) for value in stats.values())
    finally:
        client.close()


# --- cost sample: MONITOR ---------------------------------------------------------------------


def _cost_sample(
    sandbox: SandboxClient,
    web_url: str,
    token: str,
    completions: naive.Completions,
    rate: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Commands per order as clients send them, by server, for ours and the naive chain."""
    events_url, broker_url = settings.current().redis.url, settings.current().broker.url
    # The benchmark's own wait for ours (polling the active set) is left out of the count.
    poller = redis.Redis.from_url(events_url, single_connection_client=True)
    excluded = {client_address(poller)}
    ours_orders = _new_orders(sandbox, COST_SAMPLE)
    naive_orders = _naive_orders(sandbox, COST_SAMPLE)

    def monitored(action: Callable[[], object]) -> dict[str, Tally]:
        namespace = settings.current().namespace
        monitors = {
            "event_store": Monitor(events_url, namespace, excluded).start(),
            "broker": Monitor(broker_url, namespace).start(),
        }
        action()
        time.sleep(SETTLE_SECONDS)
        return {server: monitor.stop() for server, monitor in monitors.items()}

    try:
        idle = monitored(lambda: time.sleep(COST_SAMPLE / rate))
        ours = monitored(lambda: _complete(web_url, token, ours_orders, rate=rate, poller=poller))
        baseline = monitored(lambda: naive.run(completions, naive_orders, rate=rate))
    finally:
        poller.close()
    return _commands(ours, idle, COST_SAMPLE, rate), _commands(baseline, idle, COST_SAMPLE, rate)


def _commands(
    sample: dict[str, Tally], idle: dict[str, Tally], orders: int, rate: float
) -> dict[str, Any]:
    net = {server: tally.minus_background(idle[server]) for server, tally in sample.items()}

    def per_order(counts: Any) -> float:
        return round(sum(counts.values()) / orders, 1)

    events, broker = net["event_store"], net["broker"]
    figures = {
        "event_store": per_order(events.client),
        "event_store_inside_scripts": per_order(events.lua),
        "broker": per_order(broker.client),
        "broker_inside_scripts": per_order(broker.lua),
    }
    figures["total"] = round(figures["event_store"] + figures["broker"], 1)
    return {
        "orders": orders,
        "rate_per_second": round(rate, 1),
        "window_seconds": round(sample["event_store"].seconds, 1),
        "per_order": figures,
        "background": {
            "subtracted": True,
            "idle_window_seconds": round(idle["event_store"].seconds, 1),
            "client_commands_per_second": {
                server: round(sum(tally.client.values()) / tally.seconds, 1)
                for server, tally in idle.items()
            },
        },
        "per_order_before_subtraction": {
            server: per_order(tally.client) for server, tally in sample.items()
        },
        "by_command": {
            server: {
                "client": _top(tally.client, orders),
                "inside_scripts": _top(tally.lua, orders),
            }
            for server, tally in net.items()
        },
        # "COMMAND key-pattern" (ids, uuids and numbers hidden): where the commands go.
        "top_keys": {
            server: {
                "client": _top(_client_keys(tally.keys), orders, 15),
                "inside_scripts": _top(_script_keys(tally.keys), orders, 15),
            }
            for server, tally in net.items()
        },
    }


def _client_keys(keys: dict[str, float]) -> dict[str, float]:
    return {k: n for k, n in keys.items() if not k.startswith("lua ")}


def _script_keys(keys: dict[str, float]) -> dict[str, float]:
    return {k[4:]: n for k, n in keys.items() if k.startswith("lua ")}


def _top(counts: Any, orders: int, limit: int | None = None) -> dict[str, float]:
    """Per order, largest first, without what rounds to zero."""
    ranked = sorted(((n / orders, name) for name, n in counts.items()), reverse=True)
    shown = {name: round(value, 2) for value, name in ranked if abs(value) >= 0.005}
    return dict(list(shown.items())[:limit]) if limit else shown


# --- ratios and targets -----------------------------------------------------------------------


def _cpu_share(cost: dict[str, Any], flood: dict[str, Any]) -> float:
    """The share of the machine's cores the side's processes used during its flood: near 1,
    the flood was limited by CPU; well below, by something else (concurrency, waiting)."""
    per_order_ms = sum(cost["cpu_ms"].values())
    return round(per_order_ms * flood["orders_per_second"] / 1000 / (os.cpu_count() or 1), 2)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def _ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    return {
        "flood_orders_per_second": _ratio(
            ours["flood"]["orders_per_second"], baseline["flood"]["orders_per_second"]
        ),
        "paced_p50": _ratio(
            ours["paced"]["trigger_to_completed_ms"]["p50"],
            baseline["paced"]["trigger_to_completed_ms"]["p50"],
        ),
        "paced_p99": _ratio(
            ours["paced"]["trigger_to_completed_ms"]["p99"],
            baseline["paced"]["trigger_to_completed_ms"]["p99"],
        ),
        "redis_commands_sent": _ratio(
            ours["redis_commands"]["per_order"]["total"],
            baseline["redis_commands"]["per_order"]["total"],
        ),
        "salesforce_api_calls": _ratio(
            ours["per_order"]["salesforce_api_calls"], baseline["per_order"]["salesforce_api_calls"]
        ),
        "cpu_worker": _ratio(
            ours["per_order"]["cpu_ms"]["worker"], baseline["per_order"]["cpu_ms"]["worker"]
        ),
    }


def _targets(at_0ms: dict[str, Any]) -> dict[str, Any]:
    """Issue #14's, at 0 ms emulated latency."""
    ratio = at_0ms["ratio_to_naive"]["flood_orders_per_second"]
    paced = at_0ms["paced"]
    p99 = paced["trigger_to_completed_ms"]["p99"]
    commands = at_0ms["redis_commands"]["per_order"]
    return {
        "throughput_at_least_0_7_of_naive": ratio is not None and ratio >= TARGET_THROUGHPUT_RATIO,
        # None: not measured at the target's rate (ours is paced at half its flood
        # throughput at most, to stay clear of a backlog).
        "paced_p99_under_50_ms_at_20_per_second": (
            None
            if paced["rate_per_second"] < TARGET_PACED_RATE
            else p99 is not None and p99 < TARGET_PACED_P99_MS
        ),
        "paced_rate_per_second": paced["rate_per_second"],
        "commands_at_most_60_per_order": commands["total"] <= TARGET_COMMANDS_TOTAL,
        "own_commands_at_most_15_per_order": commands["event_store"] <= TARGET_COMMANDS_OURS,
    }
