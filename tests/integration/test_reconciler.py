"""The reconciler's decisions, without waiting for clocks: what is stuck and what is not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import settings
from fulfillment import recovery
from fulfillment.plan import Step
from fulfillment.recovery import ResumePoint
from notifier import publish
from settings import RecoverySettings
from tasks.broker_view import broker_client, queued_orders
from tasks.celery_app import dispatcher
from tasks.reconciler import reconcile_once
from tests.helpers import wait_for_terminal, wait_until

NOW = RecoverySettings(
    stuck_after_seconds=0, reconcile_interval_seconds=1, alive_seconds=1, max_takeovers=2
)


@pytest.fixture
def quiet_queue(redis_client, sandbox) -> Iterator[None]:
    """A namespace, and so a queue, no worker consumes: messages stay in the broker's list."""
    before = settings.current()
    settings.configure(before.replace(namespace=f"quiet-{uuid.uuid4().hex[:8]}"))
    yield
    quiet_queue_purge()
    settings.configure(before)


def test_an_order_waiting_in_the_queue_is_not_stuck(quiet_queue, sandbox_client):
    order = sandbox_client.create_order()["orderId"]
    publish(order, {"stage": "queued"})
    dispatcher().start(order, 1, 0, ResumePoint(Step.ACTIVATE))

    assert order in queued_orders()
    assert reconcile_once(dispatcher(), NOW) == []
    assert recovery.epoch(order) == 0


def test_an_order_with_no_message_is_taken_over_and_completes(worker, sandbox_client, redis_client):
    order = sandbox_client.create_order()["orderId"]
    publish(order, {"stage": "queued"})  # claimed, but its message was never sent

    assert reconcile_once(dispatcher(), NOW) == [order]

    assert wait_for_terminal(order)[-1]["stage"] == "completed"
    assert recovery.epoch(order) == 1
    wait_until(lambda: recovery.running_epoch(order) is None)  # each step marked its end
    assert reconcile_once(dispatcher(), NOW) == []  # terminal orders leave the index


def test_an_order_being_worked_on_is_not_taken_over(quiet_queue, sandbox_client):
    order = sandbox_client.create_order()["orderId"]
    publish(order, {"stage": "queued"})
    with recovery.keep_alive(order, 5):
        assert reconcile_once(dispatcher(), NOW) == []
    recovery.mark_alive(order, 5, "retry scheduled")
    assert reconcile_once(dispatcher(), NOW) == []


def test_a_step_that_keeps_dying_fails_the_order_instead_of_looping(
    quiet_queue, sandbox_client, redis_client
):
    order = _activated_order(sandbox_client)
    sent = []
    for _ in range(NOW.max_takeovers + 1):
        sent += _take_over_after(order, redis_client, step_ended=False)  # its step died

    tasks = [message["headers"]["task"] for message in sent]
    assert tasks == ["fulfillment.provision"] * NOW.max_takeovers + ["fulfillment.fail"]
    assert "RECOVERY_EXHAUSTED" in sent[-1]["headers"]["argsrepr"]


def test_a_takeover_between_steps_is_not_a_strike(quiet_queue, sandbox_client, redis_client):
    order = _activated_order(sandbox_client)
    sent = []
    for _ in range(NOW.max_takeovers + 2):  # each step finished; the next one's message was lost
        sent += _take_over_after(order, redis_client, step_ended=True)

    assert {message["headers"]["task"] for message in sent} == {"fulfillment.provision"}


def test_strikes_start_over_once_a_step_completes(quiet_queue, sandbox_client, redis_client):
    order = _activated_order(sandbox_client)
    sent = []
    for _ in range(3):  # unlucky, not poisonous: up to the limit of deaths, then progress
        for _ in range(NOW.max_takeovers):
            sent += _take_over_after(order, redis_client, step_ended=False)
        epoch = recovery.epoch(order)
        recovery.mark_started(order, epoch)
        recovery.mark_ended(order, epoch, progressed=True)

    assert {message["headers"]["task"] for message in sent} == {"fulfillment.provision"}


def _activated_order(sandbox_client) -> str:
    order = sandbox_client.create_order()["orderId"]
    publish(order, {"stage": "queued"})
    publish(order, {"stage": "activating", "status": "Activating"})
    return order


def _take_over_after(order: str, redis_client, step_ended: bool) -> list[dict]:
    """A step of the order's epoch starts, then dies (or ends between steps and the next
    message is lost); the reconciler takes over. Returns the messages it queued."""
    epoch = recovery.epoch(order)
    recovery.mark_started(order, epoch)
    if step_ended:
        recovery.mark_ended(order, epoch, progressed=False)
    assert reconcile_once(dispatcher(), NOW) == [order]
    sent = queue_messages()
    quiet_queue_purge()  # a worker took the message...
    redis_client.delete(recovery.alive_key(order))  # ...and went away
    return sent


def test_a_takeover_of_a_message_that_never_ran_is_not_a_strike(
    quiet_queue, sandbox_client, redis_client
):
    order = sandbox_client.create_order()["orderId"]
    publish(order, {"stage": "queued"})
    for _ in range(NOW.max_takeovers + 2):  # lost messages, again and again: keep resuming
        assert reconcile_once(dispatcher(), NOW) == [order]
        quiet_queue_purge()
        redis_client.delete(recovery.alive_key(order))
    assert recovery.epoch(order) == NOW.max_takeovers + 2


def queue_messages() -> list[dict]:
    """The messages waiting in the quiet queue, oldest first (read from the broker)."""
    import json

    from tasks.config import queue_name

    raw_messages = _broker().lrange(queue_name(), 0, -1)
    return [json.loads(raw) for raw in reversed(raw_messages)]


def quiet_queue_purge() -> None:
    from tasks.config import queue_name

    _broker().delete(queue_name())


def _broker():
    client = broker_client()
    assert client is not None, "these tests need the Redis broker"
    return client
