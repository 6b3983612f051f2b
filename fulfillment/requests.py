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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import settings
from integrations import TransientError
from notifier import (
    DuplicateEvent,
    IllegalTransition,
    Published,
    Stage,
    Update,
    current_state,
    publish_many,
)

from . import recovery
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
    (outcome,) = start_many([(order_id, source_event)], dispatcher)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


#: What `start_many` is asked: an order, and the outside event asking for it (or None).
StartRequest = tuple[str, str | None]


def start_many(
    requests: Sequence[StartRequest], dispatcher: Dispatcher
) -> list[Trigger | Exception]:
    """`start_fulfillment` for many orders at once: every claim in two Redis round trips
    (each claim atomic on its own), then one queued chain per order claimed. One outcome per
    request, in order: its Trigger, or the exception `start_fulfillment` would raise."""
    grace = settings.current().recovery.stuck_after_seconds
    updates = [Update(order_id, _queued_update(), source) for order_id, source in requests]
    published = publish_many(
        updates,
        read_also=recovery.queue_start_facts,
        # Marked alive before the claim: if we die before queueing, the reconciler takes over.
        before_commit=lambda pipe, order_id: recovery.queue_mark_alive(
            pipe, order_id, grace, "queued"
        ),
    )
    return [_queue_claimed(result, dispatcher) for result in published]


def _queued_update() -> dict[str, Any]:
    return {
        "stage": Stage.QUEUED,
        "message": "Order received, waiting for a worker",
        "taskId": str(uuid.uuid4()),
    }


def _queue_claimed(claim: Published, dispatcher: Dispatcher) -> Trigger | Exception:
    """Queue the chain of an order whose claim was published (or say why it was not)."""
    order_id = claim.order_id
    if isinstance(claim.error, IllegalTransition | DuplicateEvent):
        return _duplicate(order_id, claim.previous)
    if claim.error is not None or claim.payload is None:
        return claim.error or RuntimeError(f"order {order_id}: not claimed")
    failed_step, epoch = recovery.start_facts(claim.extra)
    point = recovery.resume_point(claim.previous, failed_step)
    run, task_id = int(claim.payload["run"]), str(claim.payload["taskId"])
    try:
        dispatcher.start(order_id, run, epoch, point, task_id=task_id)
    except Exception as exc:  # kombu raises several types when the broker is down
        log.error("order %s: could not queue fulfillment: %r", order_id, exc)
        update = {
            "stage": Stage.FAILED,
            "message": "Could not queue",
            "error": failure(BROKER_UNAVAILABLE),
        }
        announce(order_id, update, RedisEvents())
        return BrokerUnavailable(order_id)
    TRIGGERS.labels("queued").inc()
    log.info(
        "fulfillment queued",
        extra={"order_id": order_id, "task_id": task_id, "run": run, "step": point.step},
    )
    return Trigger(order_id, task_id, Stage.QUEUED, False, run)


def _duplicate(order_id: str, state: dict[str, Any] | None) -> Trigger:
    state = state or {}
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
