"""The lifecycle rules and payload building, without services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifier.events import (
    IllegalTransition,
    InvalidUpdate,
    Stage,
    build_payload,
    build_snapshot,
    check_transition,
    format_timestamp,
    next_progress,
    transition_allowed,
)

ORDER = "801000000000001AAA"
RETRY = {"stage": "retrying", "step": "provisioning", "attempt": 2, "nextRetryAt": "x"}


def state(stage: str, **extra: object) -> dict[str, object]:
    return {"orderId": ORDER, "stage": stage, **extra}


@pytest.mark.parametrize(
    ("current", "progress", "new", "allowed"),
    [
        (None, None, "queued", True),
        (None, None, "activating", False),
        (state("queued"), "queued", "activating", True),
        (state("queued"), "queued", "queued", False),
        (state("activating"), "activating", "activating", False),
        (state("activating"), "activating", "provisioning", True),
        (state("provisioning"), "provisioning", "activating", False),
        (state("provisioning"), "provisioning", "completed", True),
        (state("activating"), "activating", "completed", True),
        (state("completed"), "completed", "failed", False),
        (state("completed"), "completed", "activating", False),
        (state("completed"), "completed", "queued", False),
        (state("failed"), "failed", "queued", True),
        (state("failed"), "failed", "activating", False),
        (state("provisioning"), "provisioning", "failed", True),
        (state("queued"), "queued", "failed", True),
        # a retry of activation: activation was not reached yet, so it may still be announced
        (state("retrying", step="activating", attempt=2), "queued", "activating", True),
        (state("retrying", step="provisioning", attempt=2), "provisioning", "provisioning", False),
        (state("retrying", step="provisioning", attempt=2), "provisioning", "completed", True),
    ],
)
def test_transitions(current, progress, new, allowed) -> None:
    update = {"stage": new}
    assert transition_allowed(current, progress, update) is allowed


def test_a_retry_of_the_same_attempt_is_not_announced_twice() -> None:
    current = state("retrying", step="provisioning", attempt=2)
    assert not transition_allowed(current, "provisioning", RETRY)
    assert transition_allowed(current, "provisioning", {**RETRY, "attempt": 3})
    assert transition_allowed(current, "provisioning", {**RETRY, "step": "completed"})
    assert transition_allowed(state("provisioning"), "provisioning", RETRY)


def test_check_transition_names_both_stages() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(ORDER, state("completed"), "completed", {"stage": "activating"})
    assert caught.value.current == "completed"
    assert caught.value.requested == "activating"


def test_progress_ignores_retrying() -> None:
    assert next_progress("activating", RETRY) is Stage.ACTIVATING
    assert next_progress("activating", {"stage": "provisioning"}) is Stage.PROVISIONING
    assert next_progress(None, {"stage": "queued"}) is Stage.QUEUED


def test_payload_fills_order_id_and_timestamp() -> None:
    now = datetime(2026, 11, 25, 9, 0, 0, 123456, tzinfo=UTC)
    payload = build_payload(ORDER, {"stage": "queued", "message": "hi"}, None, now)
    assert payload == {
        "orderId": ORDER,
        "stage": "queued",
        "message": "hi",
        "status": None,
        "attempt": 1,
        "run": 1,
        "timestamp": "2026-11-25T09:00:00.123Z",
    }


def test_known_facts_carry_over_and_a_new_run_counts_up() -> None:
    whmcs = {"orderId": 7, "serviceIds": [9]}
    current = state("failed", status="Failed", whmcs=whmcs, run=1, taskId="t1", error={})
    payload = build_payload(ORDER, {"stage": "queued", "taskId": "t2"}, current)
    assert payload["run"] == 2
    assert payload["whmcs"] == whmcs
    assert payload["status"] == "Failed"
    assert payload["taskId"] == "t2"
    assert "error" not in payload


@pytest.mark.parametrize(
    "update",
    [
        {"stage": "shipped"},
        {"stage": "queued", "colour": "red"},
        {"stage": "queued", "attempt": "1"},
        {"stage": "queued", "attempt": True},
        {"stage": "queued", "status": "Draft"},
        {"stage": "retrying", "step": "provisioning"},
        {"stage": "retrying", "nextRetryAt": "x", "step": "queued"},
        {"stage": "failed"},
        {"stage": "failed", "error": {"code": "X", "message": "m"}},
        {"stage": "completed", "whmcs": {"orderId": "1"}},
        {"stage": "completed", "whmcs": {"orderId": 1, "serviceIds": ["2"]}},
        "queued",
    ],
)
def test_malformed_updates_are_refused(update) -> None:
    with pytest.raises(InvalidUpdate):
        build_payload(ORDER, update)


def test_snapshot_is_state_plus_history() -> None:
    history = [state("queued"), state("activating")]
    assert build_snapshot(state("activating"), history) == {
        **state("activating"),
        "history": history,
    }


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
