"""`notifier.publish` against a real Redis: atomic history + state + PUBLISH, and the rules."""

from __future__ import annotations

import json
import threading

import pytest

from notifier import (
    DuplicateEvent,
    IllegalTransition,
    InvalidUpdate,
    Update,
    current_state,
    events_after,
    keys,
    placement,
    publish,
    publish_many,
    read_snapshot,
)
from notifier.state import wait_for_events
from tests.helpers import commands_sent, listening, unreplicated_commits

ORDER = "8015g00000AbCdEAAV"


@pytest.fixture
def order_id(redis_client) -> str:
    return ORDER


def test_publish_appends_history_stores_state_and_publishes_the_envelope(redis_client, order_id):
    with listening(keys.channel(order_id)) as pubsub:
        event_id = publish(order_id, {"stage": "queued", "message": "waiting"})
        message = pubsub.get_message(timeout=2)
    envelope = json.loads(message["data"])
    assert set(envelope) == {"data", "id", "type"}  # flask-sse's Message(**envelope) accepts it
    assert envelope["id"] == event_id
    assert envelope["type"] == "order.update"
    assert envelope["data"]["stage"] == "queued"
    assert envelope["data"]["orderId"] == order_id
    assert current_state(order_id) == envelope["data"]
    snapshot = read_snapshot(order_id)
    assert snapshot.event_id == event_id
    assert snapshot.body["history"] == [envelope["data"]]


def test_event_ids_increase_and_replay_returns_what_came_after(redis_client, order_id):
    first = publish(order_id, {"stage": "queued"})
    second = publish(order_id, {"stage": "activating", "status": "Activating"})
    third = publish(order_id, {"stage": "provisioning"})
    assert first < second < third or [first, second, third] == sorted([first, second, third])
    after = events_after(order_id, first)
    assert [event_id for event_id, _ in after] == [second, third]
    assert [payload["stage"] for _, payload in after] == ["activating", "provisioning"]
    assert after[1][1]["status"] == "Activating"  # carried over


def test_an_unknown_or_trimmed_id_is_not_replayed(redis_client, order_id):
    publish(order_id, {"stage": "queued"})
    assert events_after(order_id, "1-0") is None
    assert events_after(order_id, "99999999999999-0") is None


def test_backward_and_repeated_transitions_are_refused(redis_client, order_id):
    publish(order_id, {"stage": "queued"})
    publish(order_id, {"stage": "activating"})
    with pytest.raises(IllegalTransition):
        publish(order_id, {"stage": "activating"})
    with pytest.raises(IllegalTransition):
        publish(order_id, {"stage": "queued"})
    publish(order_id, {"stage": "completed", "whmcs": {"orderId": 1, "serviceIds": [2]}})
    with pytest.raises(IllegalTransition):
        publish(
            order_id,
            {"stage": "failed", "error": {"code": "X", "message": "m", "retryable": False}},
        )
    assert current_state(order_id)["stage"] == "completed"
    assert len(read_snapshot(order_id).body["history"]) == 3


def test_concurrent_publishers_of_one_stage_publish_it_once(redis_client, order_id):
    publish(order_id, {"stage": "queued"})
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        try:
            publish(order_id, {"stage": "activating"})
            outcomes.append("published")
        except IllegalTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["published"] + ["refused"] * 7
    stages = [p["stage"] for p in read_snapshot(order_id).body["history"]]
    assert stages == ["queued", "activating"]


def test_terminal_orders_leave_the_active_index(redis_client, order_id):
    publish(order_id, {"stage": "queued"})
    assert redis_client.zscore(keys.active_orders_key(), order_id) is not None
    publish(
        order_id, {"stage": "failed", "error": {"code": "X", "message": "m", "retryable": True}}
    )
    assert redis_client.zscore(keys.active_orders_key(), order_id) is None


def test_bad_ids_and_payloads_are_refused_before_redis(redis_client):
    with pytest.raises(InvalidUpdate):
        publish("not-an-order", {"stage": "queued"})
    with pytest.raises(InvalidUpdate):
        publish(ORDER, {"stage": "queued", "extra": 1})
    assert current_state(ORDER) is None


def test_wait_for_events_follows_new_entries(redis_client, order_id):
    first = publish(order_id, {"stage": "queued"})
    assert wait_for_events(order_id, first, timeout_ms=50) == []
    publish(order_id, {"stage": "activating"})
    [(_, payload)] = wait_for_events(order_id, first, timeout_ms=1000)
    assert payload["stage"] == "activating"


def test_a_batch_commits_each_update_on_its_own_in_two_round_trips(redis_client):
    orders = ["8015g00000AbCdFAAV", "8015g00000AbCdGAAV"]
    publish(orders[1], {"stage": "queued"})
    updates = [
        Update(orders[0], {"stage": "queued"}, "event-1"),
        Update(orders[1], {"stage": "queued"}, "event-2"),  # queued already: refused
        Update(orders[0], {"stage": "queued"}, "event-1"),  # the same event again
        Update("not-an-order", {"stage": "queued"}),
    ]
    with commands_sent() as sent:
        results = publish_many(updates)
    first, refused, again, invalid = results
    assert first.event_id and first.payload["stage"] == "queued" and first.previous is None
    assert isinstance(refused.error, IllegalTransition) and refused.previous["stage"] == "queued"
    assert isinstance(again.error, DuplicateEvent | IllegalTransition)
    assert isinstance(invalid.error, InvalidUpdate)
    assert [p["stage"] for p in read_snapshot(orders[0]).body["history"]] == ["queued"]
    # Three reads in one pipeline, then the two decided commits: no per-update read-back.
    names = [c.split()[0] for c in sent]
    if placement.clustered():
        # Beside the reads, each order's entry in the active set (another slot) ahead of its
        # commit; after them the one commit's refresh there.
        assert sorted(names) == ["EVALSHA"] * 6 + ["HMGET"] * 3, sent
    else:
        assert names == ["HMGET"] * 3 + ["EVALSHA"] * 2, sent


def test_with_replicas_asked_for_a_commit_waits_and_counts_a_short_wait(
    redis_client, order_id, stack_variables
):
    # This Redis (or each cluster node here) has no replica: the WAIT comes back with none.
    stack_variables(REDIS_WAIT_REPLICAS="1", REDIS_WAIT_TIMEOUT_MS="10")
    before = unreplicated_commits()
    first = publish(order_id, {"stage": "queued"})
    second, refused = publish_many(
        [Update(order_id, {"stage": "activating"}), Update(order_id, {"stage": "queued"})]
    )
    assert unreplicated_commits() == before + 2  # one per commit; the refusal committed nothing
    assert first and second.event_id and isinstance(refused.error, IllegalTransition)
    assert [e["stage"] for e in read_snapshot(order_id).body["history"]] == ["queued", "activating"]
