"""Queueing work on Celery: a run's steps, and the failure of an order.

The web, the CLI and the reconciler queue through this, by task name, so none of them
imports the task code (the worker does, `tasks.workflow`).

A run is a chain of steps, but not a `celery.chain`: the first step's message is sent alone,
and each step, once done, sends the next (`send_step`), as a chain would after the step
returns. Each message carries only its job and the errback: a canvas chain carries every
remaining step's signature in every message, and building and cloning those cost the
trigger more CPU than the rest of its send. The messages' `argsrepr` is the job's plain
`repr` (celery's default, `saferepr`, took a fifth of a send's CPU); it quotes the order id,
where the reconciler's broker view looks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

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
        """Queue the run from `point`, for one run and epoch (the first step's task id, when
        given, is the trigger's); each step queues the next."""
        self.send_step(point.step, Job(order_id, run, epoch, reopen=point.reopen), task_id)

    def send_step(self, step: Step, job: Job, task_id: str | None = None) -> None:
        """Queue `step` for `job`, with the errback that fails the order if it fails."""
        args = (job.as_message(),)
        run = {"order_id": job.order_id, "run": job.run}
        errback = self.app.signature(ON_STEP_ERROR, args=(run,))
        self.app.send_task(
            step.task_name, args=args, task_id=task_id, queue=queue_name(),
            link_error=errback, argsrepr=repr(args), kwargsrepr="{}",
        )  # fmt: skip

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


def step_names() -> dict[str, Step]:
    return {step.task_name: step for step in Step}
