"""Celery and retry settings, read from the environment (a `.env` file is read first).

Reliability choices (see ../shared/reference/celery.md): messages are acknowledged only after a
step finishes (`task_acks_late`), a step whose worker process died is re-run
(`task_reject_on_worker_lost`), each worker reserves one message at a time, and Redis's
visibility timeout stays longer than any retry countdown so a waiting retry is never handed
to a second worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dotenv import load_dotenv

from notifier import keys
from notifier.connection import redis_url

load_dotenv(override=False)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a step is retried after a transient error."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            max_attempts=max(1, int(_env("FULFILLMENT_MAX_ATTEMPTS", "5"))),
            backoff_seconds=float(_env("RETRY_BACKOFF_SECONDS", "2")),
            backoff_max_seconds=float(_env("RETRY_BACKOFF_MAX_SECONDS", "60")),
        )


@dataclass(frozen=True)
class RecoverySettings:
    """How quickly an order nobody is working on is noticed and taken over."""

    #: An order whose last event is older than this, and that nobody marks alive, is stuck.
    stuck_after_seconds: float
    #: How often a worker looks for stuck orders (0 disables the reconciler).
    reconcile_interval_seconds: float
    #: How long a running step's alive mark lasts without renewal (a dead worker's fades).
    alive_seconds: float
    #: Takeovers of one order before it is failed instead (a step that kills its worker).
    max_takeovers: int

    @classmethod
    def from_env(cls) -> RecoverySettings:
        return cls(
            stuck_after_seconds=float(_env("STUCK_AFTER_SECONDS", "30")),
            reconcile_interval_seconds=float(_env("RECONCILE_INTERVAL_SECONDS", "10")),
            alive_seconds=float(_env("ALIVE_SECONDS", "15")),
            max_takeovers=int(_env("FULFILLMENT_MAX_TAKEOVERS", "5")),
        )


def broker_url() -> str:
    return _env("CELERY_BROKER_URL", redis_url())


def queue_name() -> str:
    """One queue per namespace, so stacks sharing a broker never take each other's orders."""
    return f"{keys.namespace()}.fulfillment"


def celery_settings() -> dict[str, Any]:
    policy = RetryPolicy.from_env()
    visibility = float(_env("CELERY_VISIBILITY_TIMEOUT", "3600"))
    # A retry countdown longer than the visibility timeout gets the message redelivered
    # to another worker while the first still holds it (celery#2481, kombu#337).
    visibility = max(visibility, policy.backoff_max_seconds * 2 + 60)
    settings: dict[str, Any] = {
        "broker_url": broker_url(),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": visibility},
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": queue_name(),
        "task_acks_late": True,
        # A pool process killed mid-step: retry it (bounded by max_retries), and requeue it if
        # even the retry cannot be sent.
        "task_retry_on_worker_lost": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        # Keep running steps when the broker connection drops: they are idempotent, and on
        # Redis their acknowledgement still lands after the reconnect.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }
    if broker_url().startswith(("amqp://", "amqps://", "pyamqp://")):
        settings.update(_rabbitmq_settings())
    return settings


def _rabbitmq_settings() -> dict[str, Any]:
    """RabbitMQ: publisher confirms, and quorum queues when asked (`CELERY_QUEUE_TYPE`).

    Quorum queues are replicated and survive a broker node's loss; Celery then delays retries
    with RabbitMQ's native delayed delivery instead of holding them in the worker.
    """
    settings: dict[str, Any] = {"broker_transport_options": {"confirm_publish": True}}
    if _env("CELERY_QUEUE_TYPE", "classic") == "quorum":
        settings["task_default_queue_type"] = "quorum"
    return settings
