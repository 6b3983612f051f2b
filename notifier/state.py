"""Reading an order's current state and history back from Redis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import keys
from .connection import get_redis
from .events import build_snapshot, decode_summary


@dataclass(frozen=True)
class Snapshot:
    """The order as it stands: its last event id and the `order.snapshot` body."""

    event_id: str
    body: dict[str, Any]


def current_state(order_id: str) -> dict[str, Any] | None:
    """The order's last published payload, or None when nothing was ever published."""
    raw = get_redis().hget(keys.state_key(order_id), "payload")
    return json.loads(raw) if raw else None


def current_states(order_ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """`current_state` of many orders, in one round trip."""
    pipe = get_redis().pipeline(transaction=False)
    for order_id in order_ids:
        pipe.hget(keys.state_key(order_id), "payload")
    raws = pipe.execute()
    return {
        oid: (json.loads(raw) if raw else None) for oid, raw in zip(order_ids, raws, strict=True)
    }


def read_snapshot(order_id: str) -> Snapshot | None:
    """Current state plus the full history, read in one round trip; None for unknown orders."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.hmget(keys.state_key(order_id), ["payload", "lastEventId", "summary"])
    pipe.xrange(keys.history_key(order_id))
    (raw, event_id, summary), entries = pipe.execute()
    if not raw:
        return None
    history = [_decode(fields) for _, fields in entries]
    body = build_snapshot(json.loads(raw), history, decode_summary(summary))
    return Snapshot(event_id=event_id, body=body)


def read_summary(order_id: str) -> dict[str, Any] | None:
    """What was ordered, when a lookup read it (None otherwise)."""
    raw = get_redis().hget(keys.state_key(order_id), "summary")
    return decode_summary(str(raw) if raw else None)


@dataclass(frozen=True)
class Replay:
    """The updates after a resume point, and the order's current state."""

    entries: list[tuple[str, dict[str, Any]]]
    current: dict[str, Any] | None


def read_replay(order_id: str, last_id: str) -> Replay | None:
    """Everything after `last_id` plus the current state in one round trip; None when the
    history no longer holds `last_id` (see `events_after`)."""
    pipe = get_redis().pipeline(transaction=True)
    history = keys.history_key(order_id)
    pipe.xrange(history, min=last_id, max=last_id, count=1)
    pipe.xrange(history, min=f"({last_id}", max="+")
    pipe.hget(keys.state_key(order_id), "payload")
    held, entries, raw = pipe.execute()
    if not held:
        return None
    decoded = [(entry_id, _decode(fields)) for entry_id, fields in entries]
    return Replay(entries=decoded, current=json.loads(raw) if raw else None)


def events_after(order_id: str, last_id: str) -> list[tuple[str, dict[str, Any]]] | None:
    """Every update after `last_id`, oldest first; None when `last_id` is no longer held.

    The id must still be in the history: if it was trimmed away (or never existed) the
    entries after it may not be all that happened, and the caller sends a snapshot instead.
    """
    replay = read_replay(order_id, last_id)
    return replay.entries if replay is not None else None


def _decode(fields: dict[str, str] | list[str]) -> dict[str, Any]:
    # A cluster's transaction (MULTI in one slot) hands back XRANGE's entries raw: their
    # fields as a flat [name, value, ...] list, not the dict redis-py makes elsewhere.
    if isinstance(fields, list):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    return json.loads(fields["data"])


def wait_for_events(
    order_id: str, last_id: str, timeout_ms: int
) -> list[tuple[str, dict[str, Any]]]:
    """Block up to `timeout_ms` for updates after `last_id` (`0` for all); oldest first."""
    reply: Any = get_redis().xread({keys.history_key(order_id): last_id}, block=timeout_ms)
    if not reply:
        return []
    _, entries = reply[0]
    return [(entry_id, _decode(fields)) for entry_id, fields in entries]
