"""What a new stream reads from Redis, in one round trip, once it is subscribed.

Opening a stream needs three answers: who owns the order (to authorize the caller), what to
send first (the snapshot, or the events after the client's `Last-Event-ID`), and, for a
customer, whether the account has a stream slot left. They used to be three round trips;
in a reconnect storm those round trips were most of a stream's cost. One script reads the
order's side atomically (owner, state and history share the order's hash tag, so it is one
slot in a cluster too), and the slot is asked for in the same pipeline.

The stream is subscribed before this read, so nothing published after it can be missed; the
live frames at or below the last id read are dropped (see `stream.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

from notifier import keys, owners
from notifier.connection import queue_script, run_pipeline
from notifier.events import decode_summary
from notifier.owners import OwnerRecord
from notifier.scripts import LuaScript

from .quota import Release, StreamQuota

_OPENING = LuaScript.load(__file__, "opening")


@dataclass(frozen=True)
class Opening:
    """Everything a new stream read: its order's owner, state and catch-up, and its slot."""

    owner: OwnerRecord
    #: The order's last published payload (None: nothing published yet).
    current: dict[str, Any] | None
    #: The id of that payload's event.
    event_id: str | None
    #: True when `entries` are the events after the client's resume id (the history still
    #: held it); False when they are the whole history (a snapshot is due).
    resumed: bool
    entries: list[tuple[str, dict[str, Any]]]
    #: The account's stream slot: None when not counted, False when none was left.
    slot: Release | bool | None = None
    #: What was ordered, when a lookup read it.
    summary: dict[str, Any] | None = None


def read_opening(
    order_id: str,
    resume_after: str | None,
    quota: StreamQuota | None = None,
    quota_key: str | None = None,
) -> Opening:
    """Read the order's side (and ask for a stream slot under `quota_key`) in one trip."""

    def build(pipe: Pipeline) -> None:
        order_keys = [keys.state_key(order_id), keys.history_key(order_id)]
        order_keys.append(owners.unknown_key(order_id))
        queue_script(pipe, _OPENING, order_keys, [resume_after or ""])

    if quota is None or quota_key is None:
        return _decode(run_pipeline(build)[0], None)
    replies, release = quota.with_slot(quota_key, build)
    return _decode(replies[0], release or False)


def _decode(reply: list[Any], slot: Release | bool | None) -> Opening:
    owner, unknown, payload, event_id, resumed, entries, summary = reply
    return Opening(
        owner=OwnerRecord(account_id=owner or None, unknown=bool(unknown), submitted=bool(payload)),
        current=json.loads(payload) if payload else None,
        event_id=event_id or None,
        resumed=bool(resumed),
        entries=[(entry_id, _data(fields)) for entry_id, fields in entries],
        slot=slot,
        summary=decode_summary(summary),
    )


def _data(fields: list[str]) -> dict[str, Any]:
    """A history entry's payload (`data` field; Lua hands the fields back as a flat list)."""
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return dict(json.loads(pairs["data"]))
