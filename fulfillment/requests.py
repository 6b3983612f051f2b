"""Asking for fulfillment: a new order, a duplicate request, or an operator retry.

One use case for every way an order is asked for (HTTP, the CLI, the Salesforce listener),
with no web request or Celery in sight: the order's existence is asked of a callable, and the
chain is queued through a `Dispatcher` port.

The `queued` event is the claim (`claims.py`): publishing it is atomic and refused while the
order is anything but new or failed, so two concurrent triggers (or a trigger and a retry)
start exactly one pipeline. A failed order's new run resumes at the step that failed. One
start is a batch of one (`start_many`): a batch's claims take two Redis round trips (two
commands per order) and at most one Salesforce query for the orders nobody recorded, and its
runs leave as one message that a worker turns into their chains (`queue_runs`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import settings
from notifier import (
    DuplicateEvent,
    IllegalTransition,
    Published,
    Stage,
    Update,
    current_state,
)
from notifier.state import current_states

from . import recovery
from .claims import Ask, claim_all, claimed_facts
from .failures import BROKER_UNAVAILABLE, failure
from .metrics import TRIGGERS
from .ports import Dispatcher, QueuedRun, RedisEvents
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
    ask: Ask | None = None,
    *,
    retry: bool = False,
    source_event: str | None = None,
) -> Trigger:
    """Queue the order (or, with `retry`, a failed order's next run). An order nobody
    recorded is asked about with `ask` (Salesforce), and refused (`UnknownOrder`) when
    Salesforce does not know it; Salesforce being down does not stop it: the pipeline
    retries, and fails an order that turns out unknown. `source_event` is the id of the
    Salesforce event that asked: the same event asking again is a duplicate, whatever the
    order's stage (a new event for a failed order opens its next run, as a trigger does)."""
    if retry:
        return retry_order(order_id, dispatcher)
    return start_fulfillment(order_id, dispatcher, source_event, ask=ask)


def start_fulfillment(
    order_id: str,
    dispatcher: Dispatcher,
    source_event: str | None = None,
    *,
    ask: Ask | None = None,
) -> Trigger:
    """Queue the order unless it is already queued, in flight or completed (or the event
    `source_event` already asked for it)."""
    (outcome,) = start_many([(order_id, source_event)], dispatcher, ask)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


#: What `start_many` is asked: an order, and the outside event asking for it (or None).
StartRequest = tuple[str, str | None]


def start_many(
    requests: Sequence[StartRequest], dispatcher: Dispatcher, ask: Ask | None = None
) -> list[Trigger | Exception]:
    """`start_fulfillment` for many orders at once: every claim in two Redis round trips
    (each claim atomic on its own; the orders nobody recorded asked about with `ask` in
    between), then the runs claimed queued in one message (a worker queues their chains).
    One outcome per request, in order: its Trigger, or the exception `start_fulfillment`
    would raise."""
    grace = settings.current().recovery.stuck_after_seconds
    updates = [Update(order_id, _queued_update(), source) for order_id, source in requests]
    outcomes = [_claimed(result) for result in claim_all(updates, grace, ask)]
    runs = [outcome for outcome in outcomes if isinstance(outcome, QueuedRun)]
    queued = iter(_queue(runs, dispatcher))
    return [next(queued) if isinstance(o, QueuedRun) else o for o in outcomes]


def _queued_update() -> dict[str, Any]:
    return {
        "stage": Stage.QUEUED,
        "message": "Order received, waiting for a worker",
        "taskId": str(uuid.uuid4()),
    }


def _claimed(claim: Published) -> QueuedRun | Trigger | Exception:
    """The run to queue for an order whose claim was published, or why there is none."""
    order_id = claim.order_id
    if isinstance(claim.error, IllegalTransition | DuplicateEvent):
        return _duplicate(order_id, claim.previous)
    if claim.error is not None or claim.payload is None:
        return claim.error or RuntimeError(f"order {order_id}: not claimed")
    failed_step, epoch = claimed_facts(claim)
    point = recovery.resume_point(claim.previous, failed_step)
    run, task_id = int(claim.payload["run"]), str(claim.payload["taskId"])
    return QueuedRun(order_id, run, epoch, point, task_id)


def _queue(runs: list[QueuedRun], dispatcher: Dispatcher) -> list[Trigger | Exception]:
    """Queue the claimed runs (one chain, or one message for many); each run's outcome."""
    if not runs:
        return []
    try:
        if len(runs) == 1:
            (one,) = runs
            dispatcher.start(one.order_id, one.run, one.epoch, one.point, task_id=one.task_id)
        else:
            dispatcher.start_many(runs)
    except Exception as exc:  # kombu raises several types when the broker is down
        log.error("%d orders: could not queue fulfillment: %r", len(runs), exc)
        update = {
            "stage": Stage.FAILED,
            "message": "Could not queue",
            "error": failure(BROKER_UNAVAILABLE),
        }
        for run in runs:
            announce(run.order_id, update, RedisEvents())
        return [BrokerUnavailable(run.order_id) for run in runs]
    TRIGGERS.labels("queued").inc(len(runs))
    for run in runs:
        log.info(
            "fulfillment queued",
            extra={"order_id": run.order_id, "task_id": run.task_id, "run": run.run,
                   "step": run.point.step},
        )  # fmt: skip
    return [Trigger(run.order_id, run.task_id, Stage.QUEUED, False, run.run) for run in runs]


class QueueingInterrupted(RuntimeError):
    """Raised when `queue_runs` could not queue a run (the broker away): `rest` are the runs
    not queued yet, that one first."""

    def __init__(self, rest: list[QueuedRun]) -> None:
        super().__init__(f"{len(rest)} runs not queued")
        self.rest = rest


def queue_runs(runs: Sequence[QueuedRun], dispatcher: Dispatcher) -> None:
    """Queue the chain of each run claimed in a batch (a worker does it for `start_many`). A
    run whose order moved on, or whose claim is another's, was queued before (its message is
    a redelivery) and is skipped; a repeat that slipped through would be refused by the steps'
    own guards, as any redelivered step is."""
    states = current_states([run.order_id for run in runs])
    for index, run in enumerate(runs):
        state = states.get(run.order_id) or {}
        if state.get("stage") != Stage.QUEUED or state.get("taskId") != run.task_id:
            log.info("run queued before", extra={"order_id": run.order_id, "run": run.run})
            continue
        try:
            dispatcher.start(run.order_id, run.run, run.epoch, run.point, task_id=run.task_id)
        except Exception as exc:  # kombu raises several types when the broker is down
            raise QueueingInterrupted(list(runs[index:])) from exc


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
