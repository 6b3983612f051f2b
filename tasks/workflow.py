"""The Celery side of fulfillment: the chain, its retry policy and its failure path.

    activate ─► provision ─► complete          (one chain per run; a retried run or a takeover
        │           │            │              starts at the step that failed or stalled)
        └───────────┴────────────┴─► on_step_error ─► fail   (permanent error or retries spent)

Tasks are thin: they call `steps` and translate outcomes. A transient error publishes a
`retrying` event and retries the step with exponential backoff and jitter; a permanent one (or
the last attempt) fails the step, which fires the chain's errback. The errback runs inline in
the worker, so it only enqueues `fail`, a real task with its own retries.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Task, chain
from celery.exceptions import Ignore, Reject, Retry

from integrations import TransientError
from notifier import Stage
from notifier.events import format_timestamp

from . import leases, ledger, steps
from .celery_app import celery
from .config import RecoverySettings, RetryPolicy, queue_name
from .metrics import RETRIES, STEP_SECONDS

log = logging.getLogger(__name__)

#: Our own infrastructure failing under a step: not the order's fault.
_INFRASTRUCTURE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_TRANSIENT = (TransientError, *_INFRASTRUCTURE)
_SYSTEM_NAMES = {"salesforce": "Salesforce", "whmcs": "WHMCS"}


def backoff_seconds(policy: RetryPolicy, attempt: int) -> float:
    """Exponential backoff with "equal jitter": never zero, never above the cap."""
    ceiling = min(policy.backoff_max_seconds, policy.backoff_seconds * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class FulfillmentStep(Task):
    """Base of the chain's steps.

    A vendor's transient error is an attempt: announced as `retrying`, retried with backoff,
    and after `FULFILLMENT_MAX_ATTEMPTS` the step fails. Trouble with our own infrastructure
    (Redis unreachable) is not the order's fault: the step is retried every few seconds
    without spending attempts, and if even that cannot be queued the order is left to the
    reconciler rather than failed. The order is marked alive while a step runs, while its
    retry is scheduled, and while its next step waits in the queue.
    """

    stage: Stage = Stage.QUEUED
    #: A pool process that died mid-step is retried (bounded: a step that keeps killing its
    #: process eventually fails the order instead of looping).
    retry_on_worker_lost = True
    max_retries = 50
    default_retry_delay = 1

    def __call__(
        self, order_id: str, run: int, epoch: int = 0, reopen: bool = False, failures: int = 0
    ) -> None:
        recovery = RecoverySettings.from_env()
        job = steps.Job(order_id, run, epoch, failures + 1, reopen)
        started, outcome = time.perf_counter(), "failed"
        try:
            with leases.keep_alive(order_id, recovery.alive_seconds):
                ledger.mark_started(order_id, epoch)
                self.run(order_id, run, epoch, reopen, failures)
            outcome = "ok"
            leases.mark_alive(order_id, recovery.stuck_after_seconds, "queued")  # the next step
        except steps.StaleMessage as exc:
            outcome = "stale"
            log.info("%s: %s", self.name, exc)
            raise Ignore() from None
        except TransientError as exc:
            error = self._retry_later(job, exc)
            outcome = "retry" if isinstance(error, Retry) else "failed"
            raise error from None
        except _INFRASTRUCTURE as exc:
            outcome = "retry"
            raise self._retry_soon(job, exc) from None
        finally:
            with contextlib.suppress(*_INFRASTRUCTURE):  # Redis down: the step is retried anyway
                ledger.mark_ended(order_id, epoch, progressed=outcome == "ok")
            self._record(job, outcome, time.perf_counter() - started)

    def _record(self, job: steps.Job, outcome: str, seconds: float) -> None:
        STEP_SECONDS.labels(self.stage, outcome).observe(seconds)
        extra = {
            "order_id": job.order_id,
            "task_id": self.request.id,
            "step": self.stage,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 1),
            "attempt": job.attempt,
            "run": job.run,
        }
        log.log(
            logging.WARNING if outcome == "failed" else logging.INFO, "step finished", extra=extra
        )

    def _retry_later(self, job: steps.Job, exc: TransientError) -> BaseException:
        policy = RetryPolicy.from_env()
        if job.attempt >= policy.max_attempts:
            return exc  # out of attempts: the step fails and the errback fails the order
        countdown = backoff_seconds(policy, job.attempt)
        RETRIES.labels(self.stage, exc.code).inc()
        steps.announce(job.order_id, self._retrying_update(job, exc, countdown, policy))
        grace = RecoverySettings.from_env().stuck_after_seconds
        leases.mark_alive(job.order_id, countdown + grace, "retry scheduled")
        kwargs = {"epoch": job.epoch, "reopen": job.reopen, "failures": job.attempt}
        return self.retry(kwargs=kwargs, countdown=countdown, max_retries=None, throw=False)

    def _retry_soon(self, job: steps.Job, exc: BaseException) -> BaseException:
        RETRIES.labels(self.stage, "REDIS_UNAVAILABLE").inc()
        log.warning("order %s: Redis unavailable (%r); retrying the step", job.order_id, exc)
        return self.retry(countdown=2 + random.uniform(0, 2), max_retries=None, throw=False)

    def _retrying_update(
        self, job: steps.Job, exc: TransientError, countdown: float, policy: RetryPolicy
    ) -> dict[str, Any]:
        system = _SYSTEM_NAMES.get(exc.system, "A dependency")
        next_at = datetime.now(UTC) + timedelta(seconds=countdown)
        return {
            "stage": Stage.RETRYING,
            "step": self.stage,
            "attempt": job.attempt + 1,
            "maxAttempts": policy.max_attempts,
            "nextRetryAt": format_timestamp(next_at),
            "message": f"{system} busy ({exc.code}), retrying in {countdown:.0f} s",
        }


def _step_task(stage: Stage, name: str, body: Any) -> Any:
    """Register `body(job)` as the Celery task `name` for the step that leads to `stage`."""

    def run(
        self: FulfillmentStep,
        order_id: str,
        run: int,
        epoch: int = 0,
        reopen: bool = False,
        failures: int = 0,
    ) -> None:
        body(steps.Job(order_id, run, epoch, failures + 1, reopen))

    run.__name__ = run.__qualname__ = name.rsplit(".", 1)[1]
    return celery.task(bind=True, base=FulfillmentStep, name=name, stage=stage)(run)


activate = _step_task(Stage.ACTIVATING, "fulfillment.activate", steps.activate)
provision = _step_task(Stage.PROVISIONING, "fulfillment.provision", steps.provision)
complete = _step_task(Stage.COMPLETED, "fulfillment.complete", steps.complete)
#: The chain, in order, by the stage each step leads to.
STEPS = {Stage.ACTIVATING: activate, Stage.PROVISIONING: provision, Stage.COMPLETED: complete}
_STAGE_OF_TASK = {task.name: stage for stage, task in STEPS.items()}


@celery.task(name="fulfillment.on_step_error")
def on_step_error(
    request: Any, exc: BaseException, traceback: Any, order_id: str, run: int
) -> None:
    """Chain errback (called inline by the worker): hand the failure to a retryable task."""
    step = _STAGE_OF_TASK.get(getattr(request, "task", ""))
    if isinstance(exc, (Reject, *_INFRASTRUCTURE)):
        # The step's retry could not even be queued (the broker or Redis is down): that is
        # not the order failing. The reconciler resumes it once things are back.
        log.warning("order %s: step %s left for the reconciler: %r", order_id, step, exc)
        return
    log.warning("order %s: step %s failed: %r", order_id, step, exc)
    fail.apply_async((order_id, run, steps.describe_error(exc), step), queue=queue_name())


@celery.task(bind=True, name="fulfillment.fail")
def fail(
    self: Task, order_id: str, run: int, error: dict[str, Any], step: str | None = None
) -> None:
    policy = RetryPolicy.from_env()
    try:
        steps.fail(order_id, run, error, step, write_salesforce=True)
    except _TRANSIENT as exc:
        attempt = int(self.request.retries or 0) + 1
        if attempt < policy.max_attempts:
            raise self.retry(
                exc=exc, countdown=backoff_seconds(policy, attempt), max_retries=policy.max_attempts
            ) from None
        # Salesforce stayed down: the stream must still learn that the order failed.
        steps.fail(order_id, run, error, step, write_salesforce=False)


def chain_from(
    order_id: str, run: int, epoch: int, first: Stage = Stage.ACTIVATING, reopen: bool = False
) -> Any:
    """The chain from the step that leads to `first` to the end, for one run and epoch."""
    stages = list(STEPS)
    signatures = [
        STEPS[stage]
        .si(order_id, run, epoch=epoch, reopen=reopen and stage == first)
        .set(queue=queue_name())  # the namespace's queue, as the environment says now
        for stage in stages[stages.index(first) :]
    ]
    return chain(*signatures).on_error(on_step_error.s(order_id, run))
