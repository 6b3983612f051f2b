"""`fulfillment.requests.start_many` against a real Redis: a batch of starts claims each order
on its own, as one start would (new, duplicate, failed, the same event twice)."""

from __future__ import annotations

from fulfillment import ledger, recovery
from fulfillment.fakes import RecordingDispatcher
from fulfillment.plan import Step
from fulfillment.ports import QueuedRun
from fulfillment.requests import Trigger, queue_runs, start_fulfillment, start_many
from notifier import publish, read_snapshot
from sandbox.ids import to18

NEW, QUEUED, FAILED = (to18(f"8015g00000StAr{n}") for n in "ABC")


def test_a_batch_of_starts_claims_each_order_once(redis_client):
    publish(QUEUED, {"stage": "queued", "taskId": "earlier"})
    publish(FAILED, {"stage": "queued"})
    publish(FAILED, {"stage": "failed", "error": {"code": "X", "message": "m", "retryable": True}})
    ledger.save_failed_step(FAILED, "provisioning")
    dispatcher = RecordingDispatcher()

    outcomes = start_many(
        [(NEW, "event-1"), (QUEUED, "event-2"), (FAILED, "event-3"), (NEW, "event-1")],
        dispatcher,
    )

    new, queued, failed, again = outcomes
    assert isinstance(new, Trigger) and not new.duplicate and new.run == 1
    assert isinstance(queued, Trigger) and queued.duplicate and queued.task_id == "earlier"
    assert isinstance(failed, Trigger) and not failed.duplicate and failed.run == 2
    assert isinstance(again, Trigger) and again.duplicate
    started = {order: (run, point.step) for order, run, _, point, _ in dispatcher.started}
    assert started == {NEW: (1, Step.ACTIVATE), FAILED: (2, Step.PROVISION)}
    assert [t for *_, t in dispatcher.started] == [new.task_id, failed.task_id]
    assert dispatcher.batches == 1  # both runs queued in one message
    for order in (NEW, FAILED):  # alive while its message waits, as one start marks it
        assert redis_client.get(recovery.alive_key(order)) == "queued"
    assert [e["stage"] for e in read_snapshot(NEW).body["history"]] == ["queued"]


def test_one_start_is_a_batch_of_one(redis_client):
    dispatcher = RecordingDispatcher()
    first = start_fulfillment(NEW, dispatcher, source_event="event-9")
    second = start_fulfillment(NEW, dispatcher, source_event="event-9")
    assert not first.duplicate and second.duplicate and second.task_id == first.task_id
    assert len(dispatcher.started) == 1


def test_queue_runs_skips_a_run_queued_before(redis_client):
    dispatcher = RecordingDispatcher()
    start_many([(NEW, "event-1"), (QUEUED, "event-2")], dispatcher)
    runs = [QueuedRun(order, run, epoch, point, task) for order, run, epoch, point, task in
            dispatcher.started]  # fmt: skip
    publish(QUEUED, {"stage": "activating"})  # its chain already ran: the message came again

    worker_side = RecordingDispatcher()
    queue_runs(runs, worker_side)
    queue_runs(runs, worker_side)  # delivered again: its orders' claims are theirs still

    assert [order for order, *_ in worker_side.started] == [NEW, NEW]
    stale = [QueuedRun(NEW, 1, 0, runs[0].point, "another-claim")]
    queue_runs(stale, worker_side)
    assert len(worker_side.started) == 2
