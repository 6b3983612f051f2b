"""The Celery application: `celery -A tasks.celery_app worker` runs the fulfillment steps."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_process_shutdown, worker_ready

from . import logs, metrics
from .config import celery_settings

celery = Celery("fulfillment", include=["tasks.workflow"])
celery.conf.update(celery_settings())


@setup_logging.connect
def _logging(**_: Any) -> None:
    logs.configure()  # JSON lines, like the web; Celery leaves the root logger to us


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    metrics.serve_worker_metrics()


@worker_ready.connect
def _start_reconciler(**_: Any) -> None:
    from .reconciler import start_loop

    start_loop()


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_: Any) -> None:
    metrics.forget_process(pid or os.getpid())


def reconfigure() -> None:
    """Re-read the environment (tests point the app at their own Redis and namespace)."""
    celery.conf.update(celery_settings())
