"""The Celery side of fulfillment: the chain, its retry policy and its failure path.

    activate ─► provision ─► complete          (one chain per order run)
        └──────────┴────────────┴─► on_step_error ─► fail   (permanent error or retries spent)

Tasks are thin: they call `steps` and translate outcomes. A transient error publishes a
`retrying` event and retries the step with exponential backoff and jitter; a permanent one (or
the last attempt) fails the step, which fires the chain's errback. The errback runs inline in
the worker, so it only enqueues `fail`, a real task with its own retries.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Task, chain
from celery.exceptions import Ignore, Retry

from integrations import TransientError
from notifier import IllegalTransition, Stage, current_state, publish
from notifier.events import format_timestamp

from . import steps
from .celery_app import celery
from .config import RetryPolicy
from .metrics import RETRIES, STEP_SECONDS, TRIGGERS

log = logging.getLogger(__name__)

#: Redis trouble while announcing or reading state is as passing as a vendor timeout.
_TRANSIENT = (TransientError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_SYSTEM_NAMES = {"salesforce": "Salesforce", "whmcs": "WHMCS"}


def backoff_seconds(policy: RetryPolicy, attempt: int) -> float:
    """Exponential backoff with "equal jitter": never zero, never above the cap."""
    ceiling = min(policy.backoff_max_seconds, policy.backoff_seconds * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class FulfillmentStep(Task):
    """Base of the chain's steps: transient errors become announced, delayed retries."""

    stage: Stage = Stage.QUEUED

    def __call__(self, order_id: str, run: int) -> None:
        started, outcome = time.perf_counter(), "failed"
        try:
            super().__call__(order_id, run)
            outcome = "ok"
        except steps.StaleMessage as exc:
            outcome = "stale"
            log.info("%s: %s", self.name, exc)
            raise Ignore() from None
        except _TRANSIENT as exc:
            error = self._retry_later(order_id, exc)
            outcome = "retry" if isinstance(error, Retry) else "failed"
            raise error from None
        finally:
            self._record(order_id, run, outcome, time.perf_counter() - started)

    def _record(self, order_id: str, run: int, outcome: str, seconds: float) -> None:
        STEP_SECONDS.labels(self.stage, outcome).observe(seconds)
        extra = {
            "order_id": order_id,
            "task_id": self.request.id,
            "step": self.stage,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 1),
            "attempt": self.attempt,
            "run": run,
        }
        log.log(
            logging.WARNING if outcome == "failed" else logging.INFO, "step finished", extra=extra
        )

    @property
    def attempt(self) -> int:
        return int(self.request.retries) + 1

    def _retry_later(self, order_id: str, exc: BaseException) -> BaseException:
        policy = RetryPolicy.from_env()
        if self.attempt >= policy.max_attempts:
            return exc  # out of attempts: the step fails and the errback fails the order
        countdown = backoff_seconds(policy, self.attempt)
        RETRIES.labels(self.stage, getattr(exc, "code", "REDIS_UNAVAILABLE")).inc()
        steps.announce(order_id, self._retrying_update(exc, countdown, policy))
        return self.retry(
            exc=exc, countdown=countdown, max_retries=policy.max_attempts, throw=False
        )

    def _retrying_update(
        self, exc: BaseException, countdown: float, policy: RetryPolicy
    ) -> dict[str, Any]:
        system = _SYSTEM_NAMES.get(getattr(exc, "system", ""), "A dependency")
        next_at = datetime.now(UTC) + timedelta(seconds=countdown)
        return {
            "stage": Stage.RETRYING,
            "step": self.stage,
            "attempt": self.attempt + 1,
            "maxAttempts": policy.max_attempts,
            "nextRetryAt": format_timestamp(next_at),
            "message": f"{system} busy ({getattr(exc, 'code', 'REDIS_UNAVAILABLE')}), "
            f"retrying in {countdown:.0f} s",
        }


@celery.task(bind=True, base=FulfillmentStep, name="fulfillment.activate", stage=Stage.ACTIVATING)
def activate(self: FulfillmentStep, order_id: str, run: int) -> None:
    steps.activate(order_id, run, self.attempt)


@celery.task(
    bind=True, base=FulfillmentStep, name="fulfillment.provision", stage=Stage.PROVISIONING
)
def provision(self: FulfillmentStep, order_id: str, run: int) -> None:
    steps.provision(order_id, run, self.attempt)


@celery.task(bind=True, base=FulfillmentStep, name="fulfillment.complete", stage=Stage.COMPLETED)
def complete(self: FulfillmentStep, order_id: str, run: int) -> None:
    steps.complete(order_id, run, self.attempt)


@celery.task(name="fulfillment.on_step_error")
def on_step_error(
    request: Any, exc: BaseException, traceback: Any, order_id: str, run: int
) -> None:
    """Chain errback (called inline by the worker): hand the failure to a retryable task."""
    log.warning("order %s: step %s failed: %r", order_id, getattr(request, "task", "?"), exc)
    fail.apply_async((order_id, run, steps.describe_error(exc)))


@celery.task(bind=True, name="fulfillment.fail")
def fail(self: Task, order_id: str, run: int, error: dict[str, Any]) -> None:
    policy = RetryPolicy.from_env()
    try:
        steps.fail(order_id, run, error, write_salesforce=True)
    except _TRANSIENT as exc:
        attempt = int(self.request.retries) + 1
        if attempt < policy.max_attempts:
            raise self.retry(
                exc=exc, countdown=backoff_seconds(policy, attempt), max_retries=policy.max_attempts
            ) from None
        # Salesforce stayed down: the stream must still learn that the order failed.
        steps.fail(order_id, run, error, write_salesforce=False)


def fulfillment_chain(order_id: str, run: int) -> Any:
    return chain(
        activate.si(order_id, run), provision.si(order_id, run), complete.si(order_id, run)
    ).on_error(on_step_error.s(order_id, run))


@dataclass(frozen=True)
class Trigger:
    """The outcome of asking for an order's fulfillment."""

    order_id: str
    task_id: str | None
    stage: str
    duplicate: bool


class BrokerUnavailable(RuntimeError):
    """Raised when the order could not be queued; it was announced as failed (retryable)."""


def start_fulfillment(order_id: str) -> Trigger:
    """Queue the order's fulfillment unless it is already queued, in flight or completed.

    The `queued` event is the claim: publishing it is atomic and refused while the order is
    anything but new or failed, so two concurrent triggers start exactly one pipeline.
    """
    task_id = str(uuid.uuid4())
    claim = {
        "stage": Stage.QUEUED,
        "message": "Order received, waiting for a worker",
        "taskId": task_id,
    }
    try:
        publish(order_id, claim)
    except IllegalTransition:
        state = current_state(order_id) or {}
        TRIGGERS.labels("duplicate").inc()
        log.info(
            "fulfillment already requested", extra={"order_id": order_id, "outcome": "duplicate"}
        )
        return Trigger(order_id, state.get("taskId"), str(state.get("stage")), duplicate=True)
    run = int((current_state(order_id) or {}).get("run", 1))
    try:
        fulfillment_chain(order_id, run).apply_async(task_id=task_id)
    except Exception as exc:  # kombu raises several types when the broker is down
        log.error("order %s: could not queue fulfillment: %r", order_id, exc)
        error = {"code": "BROKER_UNAVAILABLE", "message": "could not queue", "retryable": True}
        steps.announce(
            order_id, {"stage": Stage.FAILED, "message": "Could not queue", "error": error}
        )
        raise BrokerUnavailable(order_id) from exc
    TRIGGERS.labels("queued").inc()
    log.info("fulfillment queued", extra={"order_id": order_id, "task_id": task_id, "run": run})
    return Trigger(order_id, task_id, Stage.QUEUED, duplicate=False)
