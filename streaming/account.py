"""What a new account stream reads and sends first: every order of the account, or the
updates after the client's `Last-Event-ID`.

An account stream carries every update of the account's orders, in the order they were
published: `notifier.publish` appends each (when the order's owner is known) to the account's
event log and PUBLISHes it on the account's channel in the same step as the order's own
history. The log's entry ids are the stream's event ids, so a client resumes by id exactly as
on an order stream; each update also names its id in the order's own stream (`eventId`), so a
page that loaded an order's snapshot can drop what it already has.

A fresh stream gets `account.snapshot`: the account's orders (from the account's index,
newest first) with their current payloads. The snapshot must match the log position it
claims: the position is read before and after the states, and the read is repeated if an
update landed in between (the stream is subscribed already, so nothing after it is missed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

from notifier import keys
from notifier.connection import get_redis, run_pipeline
from notifier.events import decode_summary

from .quota import Release, StreamQuota
from .sse import encode_json, event_frame, parse_event_id
from .stream import CatchUp

SNAPSHOT_EVENT = "account.snapshot"
UPDATE_EVENT = "order.update"
#: Orders an account snapshot lists at most (newest first).
MAX_ORDERS = 100
_ATTEMPTS = 5


@dataclass(frozen=True)
class AccountOpening:
    """What a new account stream read, and its slot."""

    account_id: str
    #: True when `entries` are the updates after the client's resume id.
    resumed: bool
    entries: list[tuple[str, dict[str, Any]]]
    #: The log's last id when the snapshot was read (None: the log is empty).
    cursor: str | None
    #: The account's orders' current payloads, newest first (with `eventId`).
    orders: list[dict[str, Any]]
    #: The account's stream slot: None when not counted, False when none was left.
    slot: Release | bool | None = None


def read_account_opening(
    account_id: str,
    resume_after: str | None,
    quota: StreamQuota | None = None,
    quota_key: str | None = None,
) -> AccountOpening:
    log_key, index_key = keys.account_events_key(account_id), keys.account_orders_key(account_id)

    def build(pipe: Pipeline) -> None:
        pipe.xrevrange(log_key, count=1)
        pipe.zrevrange(index_key, 0, MAX_ORDERS - 1)
        if resume_after:
            pipe.xrange(log_key, resume_after, resume_after, count=1)
            pipe.xrange(log_key, f"({resume_after}", "+")

    if quota is None or quota_key is None:
        replies, slot = run_pipeline(build), None
    else:
        replies, release = quota.with_slot(quota_key, build)
        slot = release or False
    cursor, order_ids = _last_id(replies[0]), [str(o) for o in replies[1]]
    if resume_after and replies[2]:
        entries = [(str(entry_id), _data(fields)) for entry_id, fields in replies[3]]
        return AccountOpening(account_id, True, entries, cursor, [], slot)
    cursor, orders = _states(log_key, order_ids, cursor)
    return AccountOpening(account_id, False, [], cursor, orders, slot)


def _states(
    log_key: str, order_ids: list[str], cursor: str | None, attempts: int = _ATTEMPTS
) -> tuple[str | None, list[dict[str, Any]]]:
    """The orders' payloads as of log position `cursor` (read again if the log moved)."""
    orders: list[dict[str, Any]] = []
    for _ in range(attempts):

        def build(pipe: Pipeline) -> None:
            for order_id in order_ids:
                pipe.hmget(keys.state_key(order_id), ["payload", "lastEventId", "summary"])
            pipe.xrevrange(log_key, count=1)

        *states, last = run_pipeline(build)
        orders = [_order(o, *state) for o, state in zip(order_ids, states, strict=True)]
        if _last_id(last) == cursor:
            break
        cursor = _last_id(last)  # an update landed meanwhile: read the states again
    return cursor, orders


def _order(
    order_id: str, raw: str | None, event_id: str | None, summary: str | None
) -> dict[str, Any]:
    order: dict[str, Any] = {"orderId": order_id, "stage": None, "status": None}  # not started
    order.update(json.loads(raw) if raw else {})
    order["eventId"] = event_id if raw else None
    if decoded := decode_summary(summary):
        order["order"] = decoded
    return order


def _last_id(reply: list[Any]) -> str | None:
    return str(reply[0][0]) if reply else None


def _data(fields: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(fields["data"]))


def account_orders(account_id: str) -> list[dict[str, Any]]:
    """The account's orders with their current payloads, newest first (`GET /api/orders`)."""
    log_key, index_key = keys.account_events_key(account_id), keys.account_orders_key(account_id)
    order_ids = [str(o) for o in get_redis().zrevrange(index_key, 0, MAX_ORDERS - 1)]
    # A list matches no log position: one read of the states, never the snapshot's re-read.
    return _states(log_key, order_ids, None, attempts=1)[1]


def account_catch_up(opening: AccountOpening) -> CatchUp:
    """The snapshot, or the updates after the resume id. An account stream never finishes."""
    if opening.resumed:
        frames = [
            event_frame(UPDATE_EVENT, entry_id, encode_json(payload))
            for entry_id, payload in opening.entries
        ]
        last = opening.entries[-1][0] if opening.entries else None
        return CatchUp(frames, parse_event_id(last) if last else None, False, UPDATE_EVENT)
    body = {"accountId": opening.account_id, "orders": opening.orders}
    frame = event_frame(SNAPSHOT_EVENT, opening.cursor, encode_json(body))
    return CatchUp([frame], parse_event_id(opening.cursor), False, SNAPSHOT_EVENT)
