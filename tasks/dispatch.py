"""Queueing work on Celery: a run's chain of steps, and the failure of an order.

The web, the CLI and the reconciler queue through this, by task name, so none of them
imports the task code (the worker does, `tasks.workflow`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery, chain

from fulfillment.plan import Job, Step
from fulfillment.ports import QueuedRun
from fulfillment.recovery import ResumePoint

from .config import queue_name

ON_STEP_ERROR = "fulfillment.on_step_error"
FAIL = "fulfillment.fail"
START_RUNS = "fulfillment.start_runs"


class CeleryDispatcher:
    """`fulfillment.ports.Dispatcher` on a Celery app."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def start(
        self, order_id: str, run: int, epoch: int, point: ResumePoint, task_id: str | None = None
    ) -> None:
        """Queue the chain from `point` to the end, for one run and epoch (the chain's id,
        when given, is the trigger's task id)."""
        first = Job(order_id, run, epoch, reopen=point.reopen)
        signatures = [
            self._signature(
                step.task_name, (first if step is point.step else first.for_next_step())
            )
            for step in point.step.and_after()
        ]
        errback = self.app.signature(ON_STEP_ERROR, args=({"order_id": order_id, "run": run},))
        chain(*signatures).on_error(errback).apply_async(task_id=task_id)

    def start_many(self, runs: Sequence[QueuedRun]) -> None:
        """One message for all of `runs`; a worker queues their chains (`start_runs`)."""
        messages = [run.as_message() for run in runs]
        # The order ids, quoted, where the reconciler's broker view looks for waiting orders.
        ids = repr([run.order_id for run in runs])
        signature = self.app.signature(START_RUNS, args=(messages,), queue=queue_name())
        signature.apply_async(argsrepr=f"({ids},)")

    def fail(self, order_id: str, run: int, error: dict[str, Any], step: str | None) -> None:
        message = {"order_id": order_id, "run": run, "error": error, "step": step, "attempt": 1}
        self.app.signature(FAIL, args=(message,), queue=queue_name()).apply_async()

    def _signature(self, name: str, job: Job) -> Any:
        # The namespace's queue, as this process's settings say.
        message = (job.as_message(),)
        return self.app.signature(name, args=message, immutable=True, queue=queue_name())


def step_names() -> dict[str, Step]:
    return {step.task_name: step for step in Step}
