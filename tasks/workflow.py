"""The Celery tasks: one per step, the steps' errback, and the failure task. Thin: each
turns one job message into a call to `fulfillment.steps`, and the outcome into Celery's terms.

    activate ─► provision ─► complete          (a chain per run: `dispatch` queues its first
        │           │            │              step, each step done queues the next; a retried
        └───────────┴────────────┴─► on_step_error ─► fail     run or a takeover starts at the
                                                                step that failed or stalled)

A vendor's transient error is an attempt: announced as `retrying`, retried with backoff, and
after `FULFILLMENT_MAX_ATTEMPTS` the step fails, which fires its errback. Trouble with
our own infrastructure (Redis unreachable) is not the order's fault: the step is retried every
few seconds without spending attempts, and if even that cannot be queued the order is left to
the reconciler rather than failed. The errback runs inline in the worker, so it only queues
`fail`, a real task with its own retries. One attempt counter for all of it: `Job.attempt`,
carried in the message. `start_runs` queues the chains of runs claimed together (the
listener's batches arrive as one message, so the listener pays one send per batch).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import Ignore, Reject, Retry

import settings
from fulfillment import ports, recovery, requests, steps
from fulfillment.failures import describe_error
from fulfillment.metrics import RETRIES, STEP_SECONDS
from fulfillment.plan import Job, Step
from fulfillment.ports import QueuedRun
from fulfillment.retries import RetryPolicy
from integrations import TransientError
from notifier import Stage
from notifier.events import format_timestamp

from .config import queue_name
from .dispatch import FAIL, ON_STEP_ERROR, START_RUNS, CeleryDispatcher, step_names

log = logging.getLogger(__name__)

#: Our own infrastructure failing under a step: not the order's fault.
_INFRASTRUCTURE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_TRANSIENT = (TransientError, *_INFRASTRUCTURE)
_SYSTEM_NAMES = {"salesforce": "Salesforce", "whmcs": "WHMCS"}


class StepTask(Task):
    """A step of the chain: runs `fulfillment.steps.RULES[step]` for the job it is given."""

    #: Set per task: which step this is.
    step: Step = Step.ACTIVATE
    #: A pool process that died mid-step is retried (bounded: a step that keeps killing its
    #: process eventually fails the order instead of looping).
    retry_on_worker_lost = True
    max_retries = 50
    default_retry_delay = 1

    def perform(self, job: Job) -> None:
        current = settings.current()
        started, outcome = time.perf_counter(), "failed"
        try:
            # The step's own bookkeeping marks it alive and running as it begins, and leaves
            # the mark for the next step as it ends (`fulfillment.bookkeeping`); this renews.
            with recovery.keep_alive(job.order_id, current.recovery.alive_seconds, marked=True):
                steps.RULES[self.step](job, ports.live(current))
            outcome = "ok"
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
            if outcome != "ok":  # a finished step's bookkeeping ended it
                with contextlib.suppress(*_INFRASTRUCTURE):  # Redis down: retried anyway
                    recovery.mark_ended(job.order_id, job.epoch, progressed=False)
            self._record(job, outcome, time.perf_counter() - started)
        self._queue_next(job)

    def _queue_next(self, job: Job) -> None:
        """Queue the step after this one, as a chain would once the step returned."""
        following = self.step.following
        if following is None:
            return
        try:
            CeleryDispatcher(self.app).send_step(following, job.for_next_step())
        except Exception as exc:  # kombu raises several types when the broker is down
            # This step is done (its bookkeeping says so): the order's alive mark lapses and
            # the reconciler resumes it at the next step. Failing the order would be wrong.
            log.error("order %s: could not queue %s: %r", job.order_id, following, exc)

    def _record(self, job: Job, outcome: str, seconds: float) -> None:
        STEP_SECONDS.labels(self.step.leads_to, outcome).observe(seconds)
        extra = {
            "order_id": job.order_id,
            "task_id": self.request.id,
            "step": self.step.leads_to,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 1),
            "attempt": job.attempt,
            "run": job.run,
        }
        level = logging.WARNING if outcome == "failed" else logging.INFO
        log.log(level, "step finished", extra=extra)

    def _retry_later(self, job: Job, exc: TransientError) -> BaseException:
        current = settings.current()
        policy = RetryPolicy.from_settings(current.retry)
        if not policy.allows_another(job.attempt):
            return exc  # out of attempts: the step fails and the errback fails the order
        countdown = policy.delay(job.attempt)
        RETRIES.labels(self.step.leads_to, exc.code).inc()
        update = self._retrying_update(job, exc, countdown, policy)
        steps.announce(job.order_id, update, ports.RedisEvents())
        grace = current.recovery.stuck_after_seconds
        recovery.mark_alive(job.order_id, countdown + grace, "retry scheduled")
        return self._again(job.next_attempt(), countdown)

    def _retry_soon(self, job: Job, exc: BaseException) -> BaseException:
        RETRIES.labels(self.step.leads_to, "REDIS_UNAVAILABLE").inc()
        log.warning("order %s: Redis unavailable (%r); retrying the step", job.order_id, exc)
        return self._again(job, 2 + random.uniform(0, 2))  # not an attempt: the same job

    def _again(self, job: Job, countdown: float) -> BaseException:
        return self.retry(
            args=(job.as_message(),), countdown=countdown, max_retries=None, throw=False
        )

    def _retrying_update(
        self, job: Job, exc: TransientError, countdown: float, policy: RetryPolicy
    ) -> dict[str, Any]:
        system = _SYSTEM_NAMES.get(exc.system, "A dependency")
        next_at = datetime.now(UTC) + timedelta(seconds=countdown)
        return {
            "stage": Stage.RETRYING,
            "step": self.step.leads_to,
            "attempt": job.attempt + 1,
            "maxAttempts": policy.max_attempts,
            "nextRetryAt": format_timestamp(next_at),
            "message": f"{system} busy ({exc.code}), retrying in {countdown:.0f} s",
        }


def _step_task(step: Step) -> Any:
    def run(self: StepTask, job: dict[str, Any]) -> None:
        self.perform(Job.from_message(job))

    run.__name__ = run.__qualname__ = step.value
    return shared_task(bind=True, base=StepTask, name=step.task_name, step=step)(run)


activate = _step_task(Step.ACTIVATE)
provision = _step_task(Step.PROVISION)
complete = _step_task(Step.COMPLETE)


@shared_task(name=ON_STEP_ERROR)
def on_step_error(request: Any, exc: BaseException, traceback: Any, run: dict[str, Any]) -> None:
    """Chain errback (called inline by the worker): hand the failure to a retryable task."""
    order_id = run["order_id"]
    step = step_names().get(getattr(request, "task", ""))
    stage = step.leads_to if step else None
    if isinstance(exc, (Reject, *_INFRASTRUCTURE)):
        # The step's retry could not even be queued (the broker or Redis is down): that is
        # not the order failing. The reconciler resumes it once things are back.
        log.warning("order %s: step %s left for the reconciler: %r", order_id, stage, exc)
        return
    log.warning("order %s: step %s failed: %r", order_id, stage, exc)
    message = {
        "order_id": order_id,
        "run": run["run"],
        "error": describe_error(exc),
        "step": stage,
        "attempt": 1,
    }
    fail_order.apply_async((message,), queue=queue_name())


@shared_task(bind=True, name=START_RUNS, max_retries=30)
def start_runs(self: Task, runs: list[dict[str, Any]]) -> None:
    """Queue the chains of runs claimed together (the listener's batch)."""
    try:
        requests.queue_runs([QueuedRun.from_message(m) for m in runs], CeleryDispatcher(self.app))
    except requests.QueueingInterrupted as stopped:  # the broker away: the rest, shortly
        rest = [run.as_message() for run in stopped.rest]
        raise self.retry(args=(rest,), exc=stopped.__cause__, countdown=2) from None


@shared_task(bind=True, name=FAIL)
def fail_order(self: Task, failure: dict[str, Any]) -> None:
    """Record the order's failure: Salesforce, then the stream (retried while Salesforce is
    down; at the last attempt the stream learns of it anyway)."""
    policy = RetryPolicy.from_settings(settings.current().retry)
    order_id, run = failure["order_id"], failure["run"]
    error, step = failure["error"], failure["step"]
    attempt = int(failure.get("attempt", 1))
    live = ports.live()
    try:
        steps.record_failure(order_id, run, error, step, live, write_salesforce=True)
    except _TRANSIENT as exc:
        if policy.allows_another(attempt):
            again = {**failure, "attempt": attempt + 1}
            raise self.retry(
                args=(again,), exc=exc, countdown=policy.delay(attempt), max_retries=None
            ) from None
        # Salesforce stayed down: the stream must still learn that the order failed.
        steps.record_failure(order_id, run, error, step, live, write_salesforce=False)
