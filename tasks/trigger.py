"""Asking for fulfillment: a new order, a duplicate request, or an operator retry.

The `queued` event is the claim: publishing it is atomic and refused while the order is
anything but new or failed, so two concurrent triggers (or a trigger and a retry) start
exactly one pipeline. A failed order's new run resumes at the step that failed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from notifier import IllegalTransition, Stage, current_state, publish

from . import leases, ledger, steps
from .config import RecoverySettings
from .metrics import TRIGGERS
from .workflow import chain_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trigger:
    """The outcome of asking for an order's fulfillment."""

    order_id: str
    task_id: str | None
    stage: str
    duplicate: bool
    run: int = 1


class BrokerUnavailable(RuntimeError):
    """Raised when the order could not be queued; it was announced as failed (retryable)."""


class NotFailed(RuntimeError):
    """Raised when an operator retry is asked for an order that has not failed."""

    def __init__(self, stage: str | None) -> None:
        super().__init__(f"the order is {stage or 'unknown'}, not failed")
        self.stage = stage


def start_fulfillment(order_id: str) -> Trigger:
    """Queue the order unless it is already queued, in flight or completed."""
    before = current_state(order_id)
    first = (
        resume_stage(order_id) if before and before["stage"] == Stage.FAILED else Stage.ACTIVATING
    )
    task_id = str(uuid.uuid4())
    # Marked alive before the claim: if we die before queueing, the reconciler takes over.
    leases.mark_alive(order_id, RecoverySettings.from_env().stuck_after_seconds, "queued")
    try:
        publish(
            order_id,
            {
                "stage": Stage.QUEUED,
                "message": "Order received, waiting for a worker",
                "taskId": task_id,
            },
        )
    except IllegalTransition:
        state = current_state(order_id) or {}
        TRIGGERS.labels("duplicate").inc()
        log.info(
            "fulfillment already requested", extra={"order_id": order_id, "outcome": "duplicate"}
        )
        return Trigger(
            order_id, state.get("taskId"), str(state.get("stage")), True, state.get("run", 1)
        )
    run = int((current_state(order_id) or {}).get("run", 1))
    reopen = run > 1 and first in (Stage.PROVISIONING,)
    try:
        chain_from(order_id, run, ledger.epoch(order_id), first, reopen).apply_async(
            task_id=task_id
        )
    except Exception as exc:  # kombu raises several types when the broker is down
        log.error("order %s: could not queue fulfillment: %r", order_id, exc)
        error = {"code": "BROKER_UNAVAILABLE", "message": "could not queue", "retryable": True}
        steps.announce(
            order_id, {"stage": Stage.FAILED, "message": "Could not queue", "error": error}
        )
        raise BrokerUnavailable(order_id) from exc
    TRIGGERS.labels("queued").inc()
    log.info(
        "fulfillment queued",
        extra={"order_id": order_id, "task_id": task_id, "run": run, "step": first},
    )
    return Trigger(order_id, task_id, Stage.QUEUED, False, run)


def retry_order(order_id: str) -> Trigger:
    """An operator retry: a failed order's next run, from the step that failed."""
    state = current_state(order_id)
    if state is None or state["stage"] != Stage.FAILED:
        raise NotFailed(state["stage"] if state else None)
    return start_fulfillment(order_id)


def resume_stage(order_id: str) -> Stage:
    """Where a failed order's next run starts: the step that failed (activation if unknown)."""
    failed = ledger.load_failed_step(order_id)
    return Stage(failed) if failed in (Stage.PROVISIONING, Stage.COMPLETED) else Stage.ACTIVATING
