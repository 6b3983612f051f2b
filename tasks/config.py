"""Celery's configuration, made from the process's settings.

Reliability choices: messages are acknowledged only after a step finishes (`task_acks_late`),
a step whose worker process died is re-run (`task_reject_on_worker_lost`), each worker
reserves one message at a time, and Redis's visibility timeout stays longer than any retry
countdown so a waiting retry is never handed to a second worker.
"""

from __future__ import annotations

from typing import Any

import settings as process_settings
from settings import BrokerSettings, Settings


def queue_name(namespace: str | None = None) -> str:
    """One queue per namespace, so stacks sharing a broker never take each other's orders."""
    return f"{namespace or process_settings.current().namespace}.fulfillment"


def celery_config(settings: Settings) -> dict[str, Any]:
    # A retry countdown longer than the visibility timeout gets the message redelivered
    # to another worker while the first still holds it (celery#2481, kombu#337).
    visibility = max(
        settings.broker.visibility_timeout_seconds, settings.retry.backoff_max_seconds * 2 + 60
    )
    config: dict[str, Any] = {
        "broker_url": settings.broker.url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": visibility},
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": queue_name(settings.namespace),
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
        # Task events published a batch at a time (see the module).
        "worker_consumer": "tasks.consumer:Consumer",
    }
    if settings.broker.is_rabbitmq:
        config.update(_rabbitmq_config(settings.broker))
    elif settings.broker.url.startswith("redis://"):
        # One Redis client per channel, not one per broker call (see the module).
        config["broker_transport"] = "tasks.redis_transport:Transport"
    return config


def _rabbitmq_config(broker: BrokerSettings) -> dict[str, Any]:
    """RabbitMQ: publisher confirms, and quorum queues when asked (`CELERY_QUEUE_TYPE`).

    Quorum queues are replicated and survive a broker node's loss; Celery then delays retries
    with RabbitMQ's native delayed delivery instead of holding them in the worker.
    """
    config: dict[str, Any] = {"broker_transport_options": {"confirm_publish": True}}
    if broker.queue_type == "quorum":
        config["task_default_queue_type"] = "quorum"
    return config
