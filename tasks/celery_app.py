"""The Celery application, the composition root of the worker: `celery -A tasks.celery_app
worker` runs the fulfillment steps (`tasks.workflow`, loaded by name), configured from the
process's settings. Other processes queue work through `dispatcher()`.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_postrun,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)

import settings
from observability import logs
from observability import metrics as collected

from .config import celery_config
from .dispatch import CeleryDispatcher
from .reconciler import start_loop

celery = Celery("fulfillment", include=["tasks.workflow"], set_as_current=True)
celery.conf.update(celery_config(settings.current()))


def dispatcher() -> CeleryDispatcher:
    """Queues runs and failures on this app (the web, the CLI and the reconciler use it)."""
    return CeleryDispatcher(celery)


@setup_logging.connect
def _logging(**_: Any) -> None:
    logs.configure(settings.current().observability)  # JSON lines, like the web


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's metrics on `WORKER_METRICS_PORT` (0: not served)."""
    observability = settings.current().observability
    port, address = observability.worker_metrics_port, observability.worker_metrics_address
    collected.serve(observability, port, address)


@worker_init.connect
def _no_sent_events_from_steps(**_: Any) -> None:
    """What a worker queues (each step's next, a batch's runs, a takeover) raises no
    task-sent event: Flower learns of it when it is received, and its predecessor's
    succeeded event already says it is coming. The trigger's send still raises one, so Flower
    shows a new order waiting from the moment it is queued. The event was a second PUBLISH,
    with its own encoding, for every send: about a twentieth of the worker's CPU per order.
    The setting is the app's, so it holds for the whole process that starts a worker: an
    embedded one (the test suite's) turns it off for that process's other sends too."""
    celery.conf.task_send_sent_event = False


@worker_ready.connect
def _start_reconciler(**_: Any) -> None:
    start_loop(dispatcher())


# --- the garbage collector ------------------------------------------------------------------
# Python's full collection walks every object the collector tracks. A worker holds some
# 70,000 for good (Celery, kombu, redis-py, requests, our modules), and a full collection in
# a pool process took 40 to 60 ms (gc.callbacks, 12-03): the step it interrupted waited that
# long, which made a paced order's p99. So what a worker keeps is frozen out of the
# collector's sight (`gc.freeze()`), as the web's processes do (gunicorn.conf.py); reference
# counting still frees what a task drops, and full collections walk only what is young. Young
# garbage is collected before each freeze: a frozen cycle is never collected.

#: A pool process's first tasks, after each of which what it holds is frozen.
FREEZE_AFTER_TASKS = 8
_tasks_run = 0


@worker_init.connect
def _freeze_before_the_pool_forks(**_: Any) -> None:
    """The main process, before its pool forks: the pool processes inherit the frozen heap,
    which their full collections then never walk."""
    gc.collect()
    gc.freeze()


@worker_ready.connect
def _freeze_the_consumer(**_: Any) -> None:
    """What the main process built to consume (its connections, pool, event loop)."""
    _freeze_young()


@task_postrun.connect
def _freeze_what_first_tasks_made(**_: Any) -> None:
    """What a pool process's first tasks build and keep: its Redis pools, its gateways'
    sessions, Celery's tracers."""
    global _tasks_run
    if _tasks_run < FREEZE_AFTER_TASKS:
        _tasks_run += 1
        _freeze_young()


def _freeze_young() -> None:
    gc.collect(1)
    gc.freeze()


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_: Any) -> None:
    collected.forget_process(settings.current().observability, pid or os.getpid())
