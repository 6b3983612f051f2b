"""Asking for fulfillment: a new order, a duplicate request, or an operator retry.

One use case for every way an order is asked for (HTTP, the CLI, the coming Salesforce
listener), with no web request or Celery in sight: the order's existence is asked of a
callable, and the chain is queued through a `Dispatcher` port.

The `queued` event is the claim: publishing it is atomic and refused while the order is
anything but new or failed, so two concurrent triggers (or a trigger and a retry) start
exactly one pipeline. A failed order's new run resumes at the step that failed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import settings
from integrations import TransientError
from notifier import DuplicateEvent, IllegalTransition, Stage, current_state, publish

from . import ledger, recovery
from .failures import BROKER_UNAVAILABLE, failure
from .metrics import TRIGGERS
from .ports import Dispatcher, RedisEvents
from .steps import announce

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trigger:
    """The outcome of asking for an order's fulfillment."""

    order_id: str
    task_id: str | None
    stage: str
    duplicate: bool
    run: int = 1


class UnknownOrder(LookupError):
    """Raised when Salesforce has no such order."""


class BrokerUnavailable(RuntimeError):
    """Raised when the order could not be queued; it was announced as failed (retryable)."""


class NotFailed(RuntimeError):
    """Raised when an operator retry is asked for an order that has not failed."""

    def __init__(self, stage: str | None) -> None:
        super().__init__(f"the order is {stage or 'unknown'}, not failed")
        self.stage = stage


def request_fulfillment(
    order_id: str,
    dispatcher: Dispatcher,
    exists: Callable[[str], bool] | None = None,
    *,
    retry: bool = False,
    source_event: str | None = None,
) -> Trigger:
    """Queue the order (or, with `retry`, a failed order's next run), once `exists` says
    Salesforce knows it. Salesforce being down does not stop it: the pipeline retries, and
    fails an order that turns out unknown. `source_event` is the id of the Salesforce event
    that asked: the same event asking again is a duplicate, whatever the order's stage (a new
    event for a failed order opens its next run, as a trigger does)."""
    if exists is not None:
        _ensure_exists(order_id, exists)
    if retry:
        return retry_order(order_id, dispatcher)
    return start_fulfillment(order_id, dispatcher, source_event)


def _ensure_exists(order_id: str, exists: Callable[[str], bool]) -> None:
    try:
        if not exists(order_id):
            raise UnknownOrder(order_id)
    except TransientError as exc:
        log.warning("order %s: existence not checked (%s)", order_id, exc.code)


def start_fulfillment(
    order_id: str, dispatcher: Dispatcher, source_event: str | None = None
) -> Trigger:
    """Queue the order unless it is already queued, in flight or completed (or the event
    `source_event` already asked for it)."""
    before = current_state(order_id)
    point = recovery.resume_point(before, ledger.load_failed_step(order_id))
    task_id = str(uuid.uuid4())
    # Marked alive before the claim: if we die before queueing, the reconciler takes over.
    grace = settings.current().recovery.stuck_after_seconds
    recovery.mark_alive(order_id, grace, "queued")
    try:
        publish(
            order_id,
            {
                "stage": Stage.QUEUED,
                "message": "Order received, waiting for a worker",
                "taskId": task_id,
            },
            source_event=source_event,
        )
    except (IllegalTransition, DuplicateEvent):
        return _duplicate(order_id)
    run = int((current_state(order_id) or {}).get("run", 1))
    try:
        dispatcher.start(order_id, run, recovery.epoch(order_id), point, task_id=task_id)
    except Exception as exc:  # kombu raises several types when the broker is down
        log.error("order %s: could not queue fulfillment: %r", order_id, exc)
        update = {
            "stage": Stage.FAILED,
            "message": "Could not queue",
            "error": failure(BROKER_UNAVAILABLE),
        }
        announce(order_id, update, RedisEvents())
        raise BrokerUnavailable(order_id) from exc
    TRIGGERS.labels("queued").inc()
    log.info(
        "fulfillment queued",
        extra={"order_id": order_id, "task_id": task_id, "run": run, "step": point.step},
    )
    return Trigger(order_id, task_id, Stage.QUEUED, False, run)


def _duplicate(order_id: str) -> Trigger:
    state = current_state(order_id) or {}
    TRIGGERS.labels("duplicate").inc()
    log.info("fulfillment already requested", extra={"order_id": order_id, "outcome": "duplicate"})
    return Trigger(
        order_id, state.get("taskId"), str(state.get("stage")), True, state.get("run", 1)
    )


def retry_order(order_id: str, dispatcher: Dispatcher) -> Trigger:
    """An operator retry: a failed order's next run, from the step that failed."""
    state = current_state(order_id)
    if state is None or state["stage"] != Stage.FAILED:
        raise NotFailed(state["stage"] if state else None)
    return start_fulfillment(order_id, dispatcher)
