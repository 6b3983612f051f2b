"""Publishing an order update: history, state and live delivery in one atomic step.

One Lua script (`lua/publish.lua`) appends the update to the order's capped Redis Stream
(whose entry id becomes the SSE event id), stores it as the order's current state, and
PUBLISHes the flask-sse envelope `{"data", "id", "type"}` on the order's channel. Replay (read
from the stream) and live delivery (the channel) therefore never disagree about what happened
or in which order.

The lifecycle rules live in `events.py`, in Python. They are applied atomically by
compare-and-set: we read the order's sequence number and last payload, decide, and the script
commits only if the sequence is still the one we read; otherwise we read again.

`publish_many` does the same for many orders in two round trips (one pipeline of reads, one of
commits), each update still atomic on its own; `publish` is a batch of one. A start of a
hundred orders (the listener's batch) therefore costs two round trips, not two hundred.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

import settings

from . import keys
from .connection import queue_script, run_pipeline
from .events import (
    UPDATE_EVENT,
    IllegalTransition,
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

#: Queues commands for one order on a pipeline (see `publish_many`).
OrderCommands = Callable[[Pipeline, str], None]


class PublishConflict(RuntimeError):
    """Raised when concurrent publishers kept changing the order faster than we could commit."""


class DuplicateEvent(RuntimeError):
    """Raised when the outside event an update answers was answered before."""


@dataclass(frozen=True)
class Update:
    """One update to publish: its order, the payload without `orderId`/`timestamp`, and the
    outside event it answers (a Salesforce Platform Event's id), if any."""

    order_id: str
    update: Mapping[str, Any]
    source_event: str | None = None


@dataclass(frozen=True)
class Published:
    """What became of one `Update`."""

    order_id: str
    #: The new event's id; None when the update was refused (`error` says why).
    event_id: str | None = None
    #: The payload committed (None when refused).
    payload: dict[str, Any] | None = None
    #: The order's state the update was decided on (before it, or the current one if refused).
    previous: dict[str, Any] | None = None
    #: The reply of the command `read_also` queued for this order (last attempt's).
    extra: Any = None
    #: IllegalTransition, InvalidUpdate, DuplicateEvent or PublishConflict.
    error: Exception | None = None


def publish(order_id: str, update: Mapping[str, Any], *, source_event: str | None = None) -> str:
    """Publish an `order.update` for `order_id` and return its event id.

    `update` is the payload without `orderId`/`timestamp`, which are filled in. Raises
    `IllegalTransition` when the update would move the order backwards or repeat a stage,
    and `InvalidUpdate` when it is malformed. `source_event` names the outside event (a
    Salesforce Platform Event's id) the update answers: it is recorded with the update, in the
    same step, and an event answered before raises `DuplicateEvent` instead.
    """
    (result,) = publish_many([Update(order_id, update, source_event)])
    if result.error is not None:
        raise result.error
    return str(result.event_id)


def publish_many(
    updates: Sequence[Update],
    *,
    read_also: OrderCommands | None = None,
    before_commit: OrderCommands | None = None,
) -> list[Published]:
    """Publish many updates in two round trips (one pipeline of reads, one of commits), each
    update atomic on its own, exactly as `publish` would; one `Published` per update, in
    order. `read_also` queues one more read per order in the reads' pipeline (its reply comes
    back as `extra`); `before_commit` queues commands that must reach Redis just before the
    order's commit, in the same pipeline (an alive mark). Updates whose order changed between
    read and commit are read and decided again."""
    results: dict[int, Published] = {}
    pending: dict[int, Update] = {}
    for index, item in enumerate(updates):
        oid = normalize_order_id(item.order_id)
        if oid is None:
            invalid = InvalidUpdate(f"not a Salesforce Order id: {item.order_id!r}")
            results[index] = Published(item.order_id, error=invalid)
        else:
            pending[index] = Update(oid, item.update, item.source_event)
    for _ in range(_CAS_ATTEMPTS):
        if not pending:
            break
        reads = _read_all(pending, read_also)
        commits = {}
        for index, item in pending.items():
            decided = _decide(item, reads[index])
            if isinstance(decided, Published):
                results[index] = decided
            else:
                commits[index] = decided
        for index, outcome in _commit_all(commits, before_commit).items():
            if outcome is not None:
                results[index] = outcome
        pending = {index: pending[index] for index in commits if index not in results}
    for index, item in pending.items():
        conflict = PublishConflict(f"order {item.order_id}: too many concurrent updates")
        results[index] = Published(item.order_id, error=conflict)
    return [results[index] for index in range(len(updates))]


@dataclass(frozen=True)
class _Read:
    seq: int
    current: dict[str, Any] | None
    progress: str | None
    extra: Any
    #: The order's account, when recorded: its account stream gets the update too.
    owner: str | None = None


@dataclass(frozen=True)
class _Commit:
    update: Update
    read: _Read
    payload: dict[str, Any]
    progress: str


def _read_all(pending: Mapping[int, Update], read_also: OrderCommands | None) -> dict[int, _Read]:
    def build(pipe: Pipeline) -> None:
        for item in pending.values():
            pipe.hmget(keys.state_key(item.order_id), ["seq", "payload", "progress", "owner"])
            if read_also is not None:
                read_also(pipe, item.order_id)

    replies = iter(run_pipeline(build))
    reads = {}
    for index in pending:
        seq, raw, progress, owner = next(replies)
        extra = next(replies) if read_also is not None else None
        current = json.loads(raw) if raw else None
        progress = str(progress) if progress else None
        reads[index] = _Read(int(seq or 0), current, progress, extra, owner or None)
    return reads


def _decide(item: Update, read: _Read) -> _Commit | Published:
    """The payload to commit over what was read, or the refusal (lifecycle rules, in Python)."""
    try:
        check_transition(item.order_id, read.current, read.progress, item.update)
        payload = build_payload(item.order_id, item.update, read.current)
    except (IllegalTransition, InvalidUpdate) as exc:
        return Published(item.order_id, previous=read.current, extra=read.extra, error=exc)
    return _Commit(item, read, payload, next_progress(read.progress, item.update))


def _commit_all(
    commits: Mapping[int, _Commit], before_commit: OrderCommands | None
) -> dict[int, Published | None]:
    """Commit each decided update; None for those whose order moved on meanwhile."""
    where: dict[int, int] = {}

    def build(pipe: Pipeline) -> None:
        for index, commit in commits.items():
            if before_commit is not None:
                before_commit(pipe, commit.update.order_id)
            where[index] = len(pipe)
            _queue_commit(pipe, commit)

    replies = run_pipeline(build) if commits else []
    outcomes: dict[int, Published | None] = {}
    for index, commit in commits.items():
        reply, item, read = replies[where[index]], commit.update, commit.read
        if reply == _DUPLICATE:
            error = DuplicateEvent(
                f"order {item.order_id}: event {item.source_event} was answered before"
            )
            outcomes[index] = Published(
                item.order_id, previous=read.current, extra=read.extra, error=error
            )
        elif reply:
            outcomes[index] = Published(
                item.order_id, str(reply), commit.payload, read.current, read.extra
            )
        else:
            outcomes[index] = None
    return outcomes


_DUPLICATE = "!duplicate"


def _queue_commit(pipe: Pipeline, commit: _Commit) -> None:
    order_id, payload = commit.update.order_id, commit.payload
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    # An order has a handful of entries unless it retries a lot; the trim is approximate.
    events = settings.current().events
    order_keys = [keys.state_key(order_id), keys.history_key(order_id), keys.active_orders_key()]
    owner = commit.read.owner
    if owner:
        order_keys += [keys.account_events_key(owner), keys.account_orders_key(owner)]
    queue_script(
        pipe,
        _PUBLISH,
        keys=order_keys,
        args=[
            commit.read.seq,
            data,
            keys.channel(order_id),
            events.history_maxlen,
            events.ttl_seconds,
            "1" if is_terminal(payload["stage"]) else "0",
            int(time.time() * 1000),
            order_id,
            UPDATE_EVENT,
            commit.progress,
            commit.update.source_event or "",
            keys.account_channel(owner) if owner else "",
        ],
    )
