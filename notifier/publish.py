"""Publishing an order update: history, state and live delivery in one atomic step.

One Lua script (`lua/publish.lua`) appends the update to the order's capped Redis Stream
(whose entry id becomes the SSE event id), stores it as the order's current state, and
PUBLISHes the flask-sse envelope `{"data", "id", "type"}` on the order's channel. Replay (read
from the stream) and live delivery (the channel) therefore never disagree about what happened
or in which order.

The lifecycle rules live in `events.py`, in Python. They are applied atomically by
compare-and-set: we read the order's sequence number and last payload, decide, and the script
commits only if the sequence is still the one we read; otherwise we read again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis

import settings

from . import keys
from .connection import get_redis, run_script
from .events import (
    UPDATE_EVENT,
    InvalidUpdate,
    build_payload,
    check_transition,
    is_terminal,
    next_progress,
)
from .order_ids import normalize_order_id
from .scripts import LuaScript

_CAS_ATTEMPTS = 20

_PUBLISH = LuaScript.load(__file__, "publish")


class PublishConflict(RuntimeError):
    """Raised when concurrent publishers kept changing the order faster than we could commit."""


class DuplicateEvent(RuntimeError):
    """Raised when the outside event an update answers was answered before."""


def publish(order_id: str, update: Mapping[str, Any], *, source_event: str | None = None) -> str:
    """Publish an `order.update` for `order_id` and return its event id.

    `update` is the payload without `orderId`/`timestamp`, which are filled in. Raises
    `IllegalTransition` when the update would move the order backwards or repeat a stage,
    and `InvalidUpdate` when it is malformed. `source_event` names the outside event (a
    Salesforce Platform Event's id) the update answers: it is recorded with the update, in the
    same step, and an event answered before raises `DuplicateEvent` instead.
    """
    oid = normalize_order_id(order_id)
    if oid is None:
        raise InvalidUpdate(f"not a Salesforce Order id: {order_id!r}")
    client = get_redis()
    for _ in range(_CAS_ATTEMPTS):
        seq, current, progress = _read_for_update(client, oid)
        check_transition(oid, current, progress, update)
        payload = build_payload(oid, update, current)
        event_id = _commit(client, oid, seq, payload, next_progress(progress, update), source_event)
        if event_id == _DUPLICATE:
            raise DuplicateEvent(f"order {oid}: event {source_event} was answered before")
        if event_id:
            return str(event_id)
    raise PublishConflict(f"order {oid}: too many concurrent updates")


def _read_for_update(
    client: redis.Redis, order_id: str
) -> tuple[int, dict[str, Any] | None, str | None]:
    seq, raw, progress = client.hmget(keys.state_key(order_id), ["seq", "payload", "progress"])
    return int(seq or 0), (json.loads(raw) if raw else None), (str(progress) if progress else None)


_DUPLICATE = "!duplicate"


def _commit(
    client: redis.Redis,
    order_id: str,
    seq: int,
    payload: dict[str, Any],
    progress: str,
    source_event: str | None = None,
) -> str | None:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    # An order has a handful of entries unless it retries a lot; the trim is approximate.
    events = settings.current().events
    return run_script(
        _PUBLISH,
        keys=[keys.state_key(order_id), keys.history_key(order_id), keys.active_orders_key()],
        args=[
            seq,
            data,
            keys.channel(order_id),
            events.history_maxlen,
            events.ttl_seconds,
            "1" if is_terminal(payload["stage"]) else "0",
            int(time.time() * 1000),
            order_id,
            UPDATE_EVENT,
            progress,
            source_event or "",
        ],
        client=client,
    )
