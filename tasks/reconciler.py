"""The reconciler: finds orders nobody is working on and resumes them where they stopped.

An order is stuck when it is not terminal, its last event is older than
`STUCK_AFTER_SECONDS`, and nothing marks it alive (no step running, no retry scheduled, no
message known to be waiting). That happens when a whole worker is killed (its unacknowledged
message only comes back after the broker's visibility timeout), when a chain link or an
errback is lost, or when the web died between claiming an order and queueing it.

An order whose message is still waiting in the broker's queue (a backlog) is not stuck; the
Redis broker's queue is read to tell (see `broker_view`). The takeover itself, its epoch and
strikes, and where the order resumes are `fulfillment.recovery`'s; this module decides which
orders to take over and queues their resumption.

Every worker runs the loop in its main process; a Redis lease lets one of them work per round.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import settings as process_settings
from fulfillment import ledger, recovery
from fulfillment.failures import RECOVERY_EXHAUSTED, failure
from fulfillment.metrics import TAKEOVERS
from fulfillment.ports import Dispatcher
from notifier import current_state, is_terminal, keys
from notifier.connection import get_redis
from settings import RecoverySettings

from .broker_view import queued_orders

log = logging.getLogger(__name__)


def reconcile_once(
    dispatcher: Dispatcher, settings: RecoverySettings | None = None, limit: int = 500
) -> list[str]:
    """Take over every stuck order once; returns their ids."""
    settings = settings or process_settings.current().recovery
    cutoff_ms = (time.time() - settings.stuck_after_seconds) * 1000
    candidates = get_redis().zrangebyscore(keys.active_orders_key(), "-inf", cutoff_ms, 0, limit)
    if not candidates:
        return []
    waiting = queued_orders() or set()  # waiting their turn in the queue: not stuck
    order_ids = [str(candidate) for candidate in candidates if str(candidate) not in waiting]
    return [order_id for order_id in order_ids if resume(order_id, dispatcher, settings)]


def resume(order_id: str, dispatcher: Dispatcher, settings: RecoverySettings) -> bool:
    """Take the stuck order over and queue its resumption (or its failure); False when it
    needed nothing (finished, or someone is working on it)."""
    state = current_state(order_id)
    if state is None or is_terminal(state.get("stage")):
        get_redis().zrem(keys.active_orders_key(), order_id)
        return False
    epoch = recovery.claim_takeover(order_id, settings.stuck_after_seconds)
    if epoch is None:
        return False  # someone is working on it
    run = int(state.get("run", 1))
    died_mid_step = recovery.running_epoch(order_id) == epoch - 1
    if died_mid_step and recovery.count_strike(order_id) > settings.max_takeovers:
        dispatcher.fail(order_id, run, failure(RECOVERY_EXHAUSTED), None)
        return True
    point = recovery.resume_point(state, ledger.load_failed_step(order_id))
    dispatcher.start(order_id, run, epoch, point)
    TAKEOVERS.labels(state["stage"]).inc()
    log.warning(
        "took over a stuck order",
        extra={
            "order_id": order_id,
            "step": point.step.leads_to,
            "run": run,
            "outcome": "resumed",
            "code": state["stage"],
        },
    )
    return True


def start_loop(dispatcher: Dispatcher) -> threading.Thread | None:
    """Run the reconciler in the background of this (worker main) process."""
    settings = process_settings.current().recovery
    if settings.reconcile_interval_seconds <= 0:
        return None
    thread = threading.Thread(
        target=_loop, args=(dispatcher, settings), name="reconciler", daemon=True
    )
    thread.start()
    return thread


def _loop(dispatcher: Dispatcher, settings: RecoverySettings) -> None:
    me, interval = uuid.uuid4().hex, settings.reconcile_interval_seconds
    lease = f"{keys.namespace()}:reconciler"
    while True:
        time.sleep(interval)
        try:
            # One worker per round, cluster-wide; the lease lapses on its own if we die.
            if get_redis().set(lease, me, nx=True, px=int(interval * 900)):
                reconcile_once(dispatcher, settings)
        except Exception as exc:  # Redis down, broker down: try again next round
            log.warning("reconciler round failed: %r", exc)
