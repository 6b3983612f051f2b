"""Who owns an order: its Salesforce AccountId, kept beside the order's state in Redis.

Whatever brings an order into the pipeline (the trigger, the activation step's read of the
order) records its account with `record_owner`, in the order's state hash, so it lives as long
as the order's state and history do: streams and reads of a submitted order never ask
Salesforce who owns it. For an order not submitted yet, the web's lookup records the answer the
same way (with a shorter lifetime), and `record_unknown` remembers briefly that Salesforce has
no such order, so a bogus id costs one call per interval, not one per request.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

import settings

from . import keys, placement
from .connection import get_redis, queue_script, run_pipeline
from .scripts import LuaScript

#: Recording an owner; `fulfillment.bookkeeping` runs it inside a step's own script.
RECORD_SCRIPT = LuaScript.load(__file__, "record_owner").with_functions(
    index_order=placement.INDEX_SCRIPT
)


@dataclass(frozen=True)
class OwnerRecord:
    """What Redis knows of an order's owner, read in one round trip."""

    #: The 18-character AccountId, when recorded.
    account_id: str | None
    #: Salesforce said recently that it has no such order.
    unknown: bool
    #: The pipeline has published state for the order (so it exists).
    submitted: bool


#: Replies `queue_read` adds to a pipeline.
READ_REPLIES = 2


def read_owner(order_id: str) -> OwnerRecord:
    return read_owners([order_id])[order_id]


def read_owners(order_ids: list[str]) -> dict[str, OwnerRecord]:
    """What Redis recorded of each order's owner, in one round trip."""
    pipe = get_redis().pipeline(transaction=False)
    for order_id in order_ids:
        queue_read(pipe, order_id)
    replies = pipe.execute()
    return {
        order_id: owner_record(replies[i * READ_REPLIES : (i + 1) * READ_REPLIES])
        for i, order_id in enumerate(order_ids)
    }


def queue_read(pipe: Pipeline, order_id: str) -> None:
    """Queue the reads of `read_owner` on `pipe` (READ_REPLIES replies, for `owner_record`)."""
    pipe.hmget(keys.state_key(order_id), ["owner", "payload"])
    pipe.exists(unknown_key(order_id))


def owner_record(replies: list[Any]) -> OwnerRecord:
    (owner, payload), unknown = replies
    return OwnerRecord(account_id=owner or None, unknown=bool(unknown), submitted=bool(payload))


def record_owner(order_id: str, account_id: str, ttl_seconds: int = 0) -> None:
    """Record the order's account (and the order in the account's index, for its list and
    its stream). `ttl_seconds` applies only while the order has no state."""
    record_answers({order_id: account_id}, ttl_seconds, 0)


def record_parts(
    order_id: str,
    account_id: str,
    ttl_seconds: int,
    summary: dict[str, Any] | None = None,
    seen_ms: float | None = None,
) -> tuple[list[str], list[Any]]:
    """The record_owner script's keys and arguments."""
    # Fractional: orders recorded in the same millisecond (a batch) still sort newest first.
    now_ms = time.time() * 1000 if seen_ms is None else seen_ms
    index_ttl = settings.current().events.ttl_seconds
    record_keys = placement.owner_keys(order_id, account_id)
    summary_json = json.dumps(summary, separators=(",", ":")) if summary else ""
    return record_keys, [account_id, int(ttl_seconds), order_id, now_ms, index_ttl, summary_json]


def record_unknown(order_id: str, ttl_seconds: int) -> None:
    """Remember for `ttl_seconds` that Salesforce has no such order."""
    get_redis().set(unknown_key(order_id), "1", ex=max(1, int(ttl_seconds)))


def forget_unknown(order_id: str) -> None:
    """Drop a remembered "no such order" (an order being submitted must be asked about)."""
    get_redis().delete(unknown_key(order_id))


def record_answers(
    answers: dict[str, str | None],
    ttl_seconds: int,
    unknown_ttl_seconds: int,
    summaries: dict[str, dict[str, Any]] | None = None,
    seen_ms: dict[str, float] | None = None,
) -> None:
    """Record a batch of lookups (an AccountId, or None for "no such order") in one trip,
    with each order's summary (what was ordered) when the lookup read it, and its place in
    the account's index when the caller knows better than "now" (`seen_ms`)."""

    def build(pipe: Pipeline) -> None:
        for order_id, account_id in answers.items():
            if account_id:
                summary = (summaries or {}).get(order_id)
                seen = (seen_ms or {}).get(order_id)
                parts = record_parts(order_id, account_id, ttl_seconds, summary, seen)
                queue_script(pipe, RECORD_SCRIPT, *parts)
                placement.queue_followups(pipe, index_calls(order_id, account_id, parts[1][3]))
            else:
                pipe.set(unknown_key(order_id), "1", ex=max(1, int(unknown_ttl_seconds)))

    run_pipeline(build)


def index_calls(order_id: str, account_id: str, seen_ms: float) -> list[placement.Call]:
    """On a cluster, the order's entry in its account's index, which record_owner.lua adds
    on one Redis (the index is in the account's slot there)."""
    if not placement.clustered():
        return []
    return [placement.index(order_id, account_id, seen_ms, settings.current().events.ttl_seconds)]


def account_orders(account_id: str, limit: int = 100) -> list[str]:
    """The account's orders we know of, newest first (by when first seen)."""
    found = get_redis().zrevrange(keys.account_orders_key(account_id), 0, limit - 1)
    return [str(order_id) for order_id in found]


def unknown_key(order_id: str) -> str:
    """The marker that Salesforce recently said it has no such order."""
    return keys.order_key(order_id, "unknown")
