"""The order lifecycle and the `order.update` payload, as pure rules.

No Redis, Flask or Celery here: everything is a function of its arguments, so the rules are
tested without services and shared by the publisher (which enforces them atomically) and
anyone who wants to ask "may this order move to that stage?".

Stages move forward only: queued -> activating -> provisioning -> completed | failed, with
`retrying` between attempts of a step. A late or repeated step can never move an order back;
the only way out of `failed` is a new run (`failed` -> `queued`), opened by an operator retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    QUEUED = "queued"
    ACTIVATING = "activating"
    PROVISIONING = "provisioning"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({Stage.COMPLETED, Stage.FAILED})

#: How far along an order is; `retrying` does not move it.
_RANK = {
    Stage.QUEUED: 0,
    Stage.ACTIVATING: 1,
    Stage.PROVISIONING: 2,
    Stage.COMPLETED: 3,
    Stage.FAILED: 3,
}

#: A retrying (or failed) update names the stage its step leads to.
_RETRYABLE_STEPS = frozenset({Stage.ACTIVATING, Stage.PROVISIONING, Stage.COMPLETED})

#: Event type names on the stream.
UPDATE_EVENT = "order.update"
SNAPSHOT_EVENT = "order.snapshot"

#: Keys a caller may put in an update; `orderId` and `timestamp` are filled in here.
_UPDATE_KEYS = frozenset(
    {
        "stage",
        "status",
        "message",
        "attempt",
        "maxAttempts",
        "step",
        "run",
        "nextRetryAt",
        "whmcs",
        "error",
        "taskId",
    }
)
#: Facts that stay true once known, so later events repeat them.
_CARRIED_KEYS = ("status", "whmcs", "run", "taskId")

_STATUS_VALUES = frozenset({"Activating", "Completed", "Failed"})


class IllegalTransition(ValueError):
    """Raised when an update would move an order backwards, repeat a stage, or leave a
    terminal state."""

    def __init__(self, order_id: str, current: str | None, requested: str) -> None:
        self.order_id = order_id
        self.current = current
        self.requested = requested
        super().__init__(f"order {order_id}: {current or 'new'} -> {requested} is not allowed")


class InvalidUpdate(ValueError):
    """Raised when an update payload is malformed."""


def is_terminal(stage: str | None) -> bool:
    return stage in TERMINAL


def next_progress(progress: str | None, update: Mapping[str, Any]) -> Stage:
    """The furthest stage reached after `update`: a `retrying` update reaches nothing new."""
    stage = Stage(update["stage"])
    if stage is Stage.RETRYING:
        return Stage(progress or Stage.QUEUED)
    return stage


def transition_allowed(
    current: Mapping[str, Any] | None, progress: str | None, update: Mapping[str, Any]
) -> bool:
    """Whether an order whose last payload is `current`, and which has reached `progress`
    (its furthest non-retrying stage), may publish `update`."""
    new = Stage(update["stage"])
    if current is None:
        return new is Stage.QUEUED
    stage = Stage(current["stage"])
    if new is Stage.QUEUED:
        return stage is Stage.FAILED
    if stage in TERMINAL:
        return False
    if new is Stage.FAILED:
        return True
    if new is Stage.RETRYING:
        return _is_newer_retry(current, update)
    return _RANK[new] > _RANK[Stage(progress or Stage.QUEUED)]


def _is_newer_retry(current: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
    # A redelivered retry of the same step must not announce the same attempt twice.
    if Stage(current["stage"]) is not Stage.RETRYING:
        return True
    same_step = current.get("step") == update.get("step")
    return not same_step or int(update.get("attempt", 0)) > int(current.get("attempt", 0))


def check_transition(
    order_id: str,
    current: Mapping[str, Any] | None,
    progress: str | None,
    update: Mapping[str, Any],
) -> None:
    if not transition_allowed(current, progress, update):
        raise IllegalTransition(order_id, current["stage"] if current else None, update["stage"])


def build_payload(
    order_id: str,
    update: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate `update` and return the full `order.update` payload.

    Facts already known about the order (Salesforce status, WHMCS ids, run, task id) carry
    over from `current` unless the update restates them; `queued` after `failed` opens the
    next run.
    """
    validate_update(update)
    payload: dict[str, Any] = {"orderId": order_id}
    if current is not None:
        payload.update({k: current[k] for k in _CARRIED_KEYS if k in current})
        if Stage(update["stage"]) is Stage.QUEUED:
            payload["run"] = int(current.get("run", 1)) + 1
    payload.update(update)
    payload.setdefault("status", None)
    payload.setdefault("attempt", 1)
    payload.setdefault("run", 1)
    payload["timestamp"] = format_timestamp(now or datetime.now(UTC))
    return payload


def validate_update(update: Mapping[str, Any]) -> None:
    """Raise InvalidUpdate unless `update` is a well-formed lifecycle update."""
    if not isinstance(update, Mapping):
        raise InvalidUpdate("an update must be a mapping")
    unknown = set(update) - _UPDATE_KEYS
    if unknown:
        raise InvalidUpdate(f"unknown update fields: {', '.join(sorted(unknown))}")
    try:
        stage = Stage(str(update.get("stage")))
    except ValueError:
        raise InvalidUpdate(f"unknown stage {update.get('stage')!r}") from None
    _require_type(update, "message", str)
    _require_type(update, "attempt", int)
    _require_type(update, "maxAttempts", int)
    _require_type(update, "run", int)
    _require_type(update, "nextRetryAt", str)
    if update.get("status") not in _STATUS_VALUES | {None}:
        raise InvalidUpdate(f"unknown Salesforce status {update.get('status')!r}")
    if stage is Stage.RETRYING:
        _validate_retry(update)
    if stage is Stage.FAILED:
        _validate_error(update.get("error"))
        if update.get("step") not in _RETRYABLE_STEPS | {None}:
            raise InvalidUpdate(f"unknown failed step {update.get('step')!r}")
    if "whmcs" in update:
        _validate_whmcs(update["whmcs"])


def _require_type(update: Mapping[str, Any], key: str, kind: type) -> None:
    value = update.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise InvalidUpdate(f"{key} must be {kind.__name__}")


def _validate_retry(update: Mapping[str, Any]) -> None:
    if not update.get("nextRetryAt"):
        raise InvalidUpdate("a retrying update needs nextRetryAt")
    if update.get("step") not in _RETRYABLE_STEPS:
        raise InvalidUpdate(
            f"a retrying update names the step it retries, not {update.get('step')!r}"
        )


def _validate_error(error: Any) -> None:
    if not isinstance(error, Mapping):
        raise InvalidUpdate("a failed update needs an error object")
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        raise InvalidUpdate("error needs a code and a message")
    if not isinstance(error.get("retryable"), bool):
        raise InvalidUpdate("error.retryable must be a boolean")


def _validate_whmcs(whmcs: Any) -> None:
    if not isinstance(whmcs, Mapping) or not isinstance(whmcs.get("orderId"), int):
        raise InvalidUpdate("whmcs needs an integer orderId")
    ids = whmcs.get("serviceIds", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise InvalidUpdate("whmcs.serviceIds must be a list of integers")


def build_snapshot(
    current: Mapping[str, Any] | None,
    history: list[dict[str, Any]],
    summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `order.snapshot` body: the current state plus the past updates, oldest first, and
    what was ordered (`order`) when its summary was read."""
    body = dict(current or {})
    body["history"] = history
    if summary:
        body["order"] = dict(summary)
    return body


def pending_snapshot(order_id: str, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `order.snapshot` body of an order that exists but has no events yet."""
    body: dict[str, Any] = {"orderId": order_id, "stage": None, "status": None, "history": []}
    if summary:
        body["order"] = dict(summary)
    return body


def decode_summary(raw: str | None) -> dict[str, Any] | None:
    """The summary stored beside the order's state (JSON), or None."""
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_timestamp(value: Any) -> float | None:
    """A payload timestamp as a unix time, or None when it is missing or malformed."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, as browsers parse it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
