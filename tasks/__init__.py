"""The fulfillment workflow on Celery: the app, the chain of steps, retries, idempotency.

The web side only needs `start_fulfillment`; workers run `celery -A tasks.celery_app worker`.
"""
