"""The reconciler: finds orders nobody is working on and resumes them where they stopped.

An order is stuck when it is not terminal, its last event is older than
`STUCK_AFTER_SECONDS`, and nothing marks it alive (no step running, no retry scheduled, no
message known to be waiting). That happens when a whole worker is killed (its unacknowledged
message only comes back after the broker's visibility timeout), when a chain link or an
errback is lost, or when the web died between claiming an order and queueing it.

An order whose message is still waiting in the broker's queue (a backlog) is not stuck; the
Redis broker's queue is read to tell (see `broker_view`). Taking an order over bumps its epoch
in the same atomic step that checks it is not alive, so the old delivery, if it ever turns up,
is stale and does nothing: there is never a second live pipeline. When the step of the
taken-over epoch was still running, it died mid-run (a strike); an order with more than
`FULFILLMENT_MAX_TAKEOVERS` strikes in a row, without a step completing in between (a step that
keeps killing its worker), is failed instead of looping.

Every worker runs the loop in its main process; a Redis lease lets one of them work per round.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from prometheus_client import Counter

from notifier import Stage, current_state, is_terminal, keys
from notifier.connection import get_redis

from . import leases, ledger
from .broker_view import queued_orders
from .config import RecoverySettings, queue_name
from .trigger import resume_stage
from .workflow import chain_from, fail

log = logging.getLogger(__name__)

TAKEOVERS = Counter(
    "fulfillment_takeovers_total", "Stuck orders resumed by the reconciler, by stage.", ["stage"]
)

#: Where a stuck order resumes, by the stage it shows.
_NEXT_STEP = {
    Stage.ACTIVATING: Stage.PROVISIONING,  # activation was announced: provisioning is next
    Stage.PROVISIONING: Stage.PROVISIONING,  # re-run: it finds what WHMCS already has
}


def reconcile_once(settings: RecoverySettings | None = None, limit: int = 500) -> list[str]:
    """Take over every stuck order once; returns their ids."""
    settings = settings or RecoverySettings.from_env()
    cutoff_ms = (time.time() - settings.stuck_after_seconds) * 1000
    candidates = get_redis().zrangebyscore(keys.active_orders_key(), "-inf", cutoff_ms, 0, limit)
    if not candidates:
        return []
    waiting = queued_orders() or set()  # waiting their turn in the queue: not stuck
    order_ids = [str(candidate) for candidate in candidates if str(candidate) not in waiting]
    return [order_id for order_id in order_ids if take_over(order_id, settings)]


def take_over(order_id: str, settings: RecoverySettings) -> bool:
    state = current_state(order_id)
    if state is None or is_terminal(state.get("stage")):
        get_redis().zrem(keys.active_orders_key(), order_id)
        return False
    epoch = leases.take_over(order_id, settings.stuck_after_seconds)
    if epoch is None:
        return False  # someone is working on it
    stage, run = Stage(state["stage"]), int(state.get("run", 1))
    died_mid_step = ledger.running_epoch(order_id) == epoch - 1
    if died_mid_step and ledger.count_strike(order_id) > settings.max_takeovers:
        error = {
            "code": "RECOVERY_EXHAUSTED",
            "message": "fulfillment kept stalling",
            "retryable": True,
        }
        fail.apply_async((order_id, run, error, None), queue=queue_name())
        return True
    first = _resume_at(order_id, state)
    chain_from(
        order_id, run, epoch, first, reopen=run > 1 and first == Stage.PROVISIONING
    ).apply_async()
    TAKEOVERS.labels(stage).inc()
    log.warning(
        "took over a stuck order",
        extra={
            "order_id": order_id,
            "step": first,
            "run": run,
            "outcome": "resumed",
            "code": stage,
        },
    )
    return True


def _resume_at(order_id: str, state: dict[str, Any]) -> Stage:
    stage = Stage(state["stage"])
    if stage is Stage.RETRYING:
        return Stage(state.get("step") or Stage.ACTIVATING)
    if stage is Stage.QUEUED:
        return resume_stage(order_id) if int(state.get("run", 1)) > 1 else Stage.ACTIVATING
    return _NEXT_STEP.get(stage, Stage.ACTIVATING)


def start_loop() -> threading.Thread | None:
    """Run the reconciler in the background of this (worker main) process."""
    settings = RecoverySettings.from_env()
    if settings.reconcile_interval_seconds <= 0:
        return None
    thread = threading.Thread(target=_loop, args=(settings,), name="reconciler", daemon=True)
    thread.start()
    return thread


def _loop(settings: RecoverySettings) -> None:
    me, interval = uuid.uuid4().hex, settings.reconcile_interval_seconds
    lease = f"{keys.namespace()}:reconciler"
    while True:
        time.sleep(interval)
        try:
            # One worker per round, cluster-wide; the lease lapses on its own if we die.
            if get_redis().set(lease, me, nx=True, px=int(interval * 900)):
                reconcile_once(settings)
        except Exception as exc:  # Redis down, broker down: try again next round
            log.warning("reconciler round failed: %r", exc)
