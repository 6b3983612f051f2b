"""The Celery application: `celery -A tasks.celery_app worker` runs the fulfillment steps."""

from __future__ import annotations

from celery import Celery

from .config import celery_settings

celery = Celery("fulfillment", include=["tasks.workflow"])
celery.conf.update(celery_settings())


def reconfigure() -> None:
    """Re-read the environment (tests point the app at their own Redis and namespace)."""
    celery.conf.update(celery_settings())
