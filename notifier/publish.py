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

On a Redis Cluster the script commits the order's own keys only; the active set and the
account's stream follow in their own slots (`notifier.placement` says how and why), one more
round trip per batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from redis.client import Pipeline

import settings

from . import keys, placement
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

#: The publish script; `fulfillment.bookkeeping` runs it inside a step's own script, so a
#: step's bookkeeping and its update are one call (see `commit_parts`).
PUBLISH_SCRIPT = LuaScript.load(__file__, "publish").with_functions(
    track_active=placement.TRACK_SCRIPT, append_account=placement.APPEND_SCRIPT
)


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
    updates: Sequence[Update], publishing: Publishing | None = None
) -> list[Published]:
    """Publish many updates in two round trips (one pipeline of reads, one of commits), each
    update atomic on its own, exactly as `publish` would; one `Published` per update, in
    order. Updates whose order changed between read and commit are read and decided again.
    `publishing` says how each order is read and committed (default: the state, and the
    publish script): a caller doing more in the same commands passes its own."""
    publishing = publishing or Publishing()
    results: dict[int, Published] = {}
    pending: dict[int, Update] = {}
    for index, item in enumerate(updates):
        oid = normalize_order_id(item.order_id)
        if oid is None:
            invalid = InvalidUpdate(f"not a Salesforce Order id: {item.order_id!r}")
            results[index] = Published(item.order_id, error=invalid)
        else:
            pending[index] = Update(oid, item.update, item.source_event)
    for attempt in range(_CAS_ATTEMPTS):
        if not pending:
            break
        reads = _read_all(pending, publishing)
        if attempt == 0:
            results.update(publishing.review(pending, reads))
        commits = {}
        for index, item in pending.items():
            if index in results:
                continue
            decided = decide(item, reads[index])
            if isinstance(decided, Published):
                results[index] = decided
            else:
                commits[index] = decided
        for index, outcome in _commit_all(commits, publishing).items():
            if outcome is not None:
                results[index] = outcome
        pending = {index: pending[index] for index in commits if index not in results}
    for index, item in pending.items():
        conflict = PublishConflict(f"order {item.order_id}: too many concurrent updates")
        results[index] = Published(item.order_id, error=conflict)
    return [results[index] for index in range(len(updates))]


class Publishing:
    """How `publish_many` reads and commits each order: one command each. A subclass may do
    more in those commands (a script of its own that calls the publish script: see
    `fulfillment.claims`)."""

    def queue_read(self, pipe: Pipeline, order_id: str) -> None:
        pipe.hmget(keys.state_key(order_id), list(READ_FIELDS))

    def read(self, reply: Any) -> OrderRead:
        return OrderRead.from_reply(reply)

    def review(
        self, pending: Mapping[int, Update], reads: dict[int, OrderRead]
    ) -> dict[int, Published]:
        """After the first read: refusals decided before any update is (by index); may
        replace entries of `reads` (an owner learned meanwhile)."""
        return {}

    def queue_commit(self, pipe: Pipeline, commit: Commit) -> None:
        queue_script(pipe, PUBLISH_SCRIPT, *commit_parts(commit))


@dataclass(frozen=True)
class OrderRead:
    """What an update is decided on: the order's sequence number, state and progress as read
    (one HMGET of `READ_FIELDS`; `from_reply` decodes it)."""

    seq: int
    current: dict[str, Any] | None
    progress: str | None
    extra: Any
    #: The order's account, when recorded: its account stream gets the update too.
    owner: str | None = None

    @classmethod
    def from_reply(cls, reply: Sequence[Any], extra: Any = None) -> OrderRead:
        seq, raw, progress, owner = reply
        current = json.loads(raw) if raw else None
        return cls(int(seq or 0), current, str(progress) if progress else None, extra,
                   owner or None)  # fmt: skip


#: The state hash's fields an `OrderRead` is made of, in `from_reply`'s order.
READ_FIELDS = ("seq", "payload", "progress", "owner")


@dataclass(frozen=True)
class Commit:
    update: Update
    read: OrderRead
    payload: dict[str, Any]
    progress: str
    #: When it was decided, in ms: the order's score in the active set.
    at_ms: int = 0

    @property
    def terminal(self) -> bool:
        return is_terminal(self.payload["stage"])

    @cached_property
    def encoded(self) -> str:
        """The payload as the scripts store and send it."""
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=True)


def _read_all(pending: Mapping[int, Update], publishing: Publishing) -> dict[int, OrderRead]:
    """Each order's read, with (on a cluster) its entry in the active set ahead of its commit."""
    intents = 0

    def build(pipe: Pipeline) -> None:
        nonlocal intents
        intents = 0
        for item in pending.values():
            publishing.queue_read(pipe, item.order_id)
        now = _now_ms()
        for item in pending.values():
            terminal = is_terminal(str(item.update.get("stage")))
            intents += placement.queue_intent(pipe, item.order_id, terminal, now)

    replies = run_pipeline(build)
    reads = replies[: len(replies) - intents]
    return {index: publishing.read(reply) for index, reply in zip(pending, reads, strict=True)}


def _now_ms() -> int:
    return int(time.time() * 1000)


def decide(item: Update, read: OrderRead) -> Commit | Published:
    """The payload to commit over what was read, or the refusal (lifecycle rules, in Python).
    `item.order_id` must be normalized."""
    try:
        check_transition(item.order_id, read.current, read.progress, item.update)
        payload = build_payload(item.order_id, item.update, read.current)
    except (IllegalTransition, InvalidUpdate) as exc:
        return Published(item.order_id, previous=read.current, extra=read.extra, error=exc)
    return Commit(item, read, payload, next_progress(read.progress, item.update), _now_ms())


def _commit_all(
    commits: Mapping[int, Commit], publishing: Publishing
) -> dict[int, Published | None]:
    """Commit each decided update; None for those whose order moved on meanwhile."""

    def build(pipe: Pipeline) -> None:
        for commit in commits.values():
            publishing.queue_commit(pipe, commit)

    replies = run_pipeline(build, replicated=True) if commits else []
    outcomes = {
        index: commit_outcome(reply, commit)
        for (index, commit), reply in zip(commits.items(), replies, strict=True)
    }
    placement.run_followups(
        [call for index, outcome in outcomes.items() if outcome is not None
         for call in followups(commits[index], outcome)]
    )  # fmt: skip
    return outcomes


_DUPLICATE = "!duplicate"


def commit_outcome(reply: Any, commit: Commit) -> Published | None:
    """What the publish script's `reply` to `commit` means; None when the order moved on
    between read and commit (read and decide again)."""
    item, read = commit.update, commit.read
    if reply == _DUPLICATE:
        error = DuplicateEvent(
            f"order {item.order_id}: event {item.source_event} was answered before"
        )
        return Published(item.order_id, previous=read.current, extra=read.extra, error=error)
    if reply:
        return Published(item.order_id, str(reply), commit.payload, read.current, read.extra)
    return None


def commit_parts(commit: Commit) -> tuple[list[str], list[Any]]:
    """The publish script's keys and arguments for `commit`."""
    order_id = commit.update.order_id
    # An order has a handful of entries unless it retries a lot; the trim is approximate.
    events = settings.current().events
    return (
        placement.publish_keys(order_id, commit.read.owner),
        [
            commit.read.seq,
            commit.encoded,
            events.history_maxlen,
            events.ttl_seconds,
            "1" if commit.terminal else "0",
            commit.at_ms,
            order_id,
            UPDATE_EVENT,
            commit.progress,
            commit.update.source_event or "",
            placement.publish_command(),
        ],
    )


def followups(commit: Commit, outcome: Published) -> list[placement.Call]:
    """What follows `commit` in other slots on a cluster (nothing on one Redis, or when the
    commit was refused): the active set's change, and the account's stream."""
    if not placement.clustered() or outcome.event_id is None:
        return []
    order_id, owner = commit.update.order_id, commit.read.owner
    calls = [placement.track(order_id, commit.terminal, commit.at_ms)]
    if owner:
        events = settings.current().events
        args = [commit.encoded, outcome.event_id, events.history_maxlen, events.ttl_seconds,
                commit.at_ms, order_id, UPDATE_EVENT, placement.publish_command()]  # fmt: skip
        calls.append(placement.Call(placement.APPEND_SCRIPT, placement.account_keys(owner), args))
    return calls
