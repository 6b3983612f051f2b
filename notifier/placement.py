"""Which writes of an update commit together: all of them on one Redis; on a Redis Cluster
(`REDIS_CLUSTER=1`), only those of one slot.

An update touches three places: the order's own keys (state, history, channel: one slot, by
their `{order id}` hash tag), the set of active orders (the reconciler's), and, once the
order's owner is known, the account's log, index and channel (`{account id}`). On one Redis
the publish script writes all three at once. A cluster's script may touch one slot only, so
there the order's part commits alone and the others follow, each in its own slot, in an order
that a crash between them cannot turn into a lost order:

- A non-terminal order enters the active set *before* its commit (`queue_intent`, with the
  reads the commit is decided on), so an order that committed is always one the reconciler
  finds. The refresh of its score, and a terminal order's removal, come after
  (`queue_followups`): one lost leaves an older score, or an entry the reconciler drops when
  it finds the order terminal.
- The account's log gets the update after the commit, with its event id. A publisher that
  dies between the two leaves that one update out of the account stream; the order's own
  stream has it, and the order's next update (which carries the whole state) corrects the
  account's pages. That is the price of one log across an account's orders, which live in
  many slots.

Channels carry the same hash tags: on a cluster they are shard channels (SPUBLISH, read with
SSUBSCRIBE from the node that serves the slot, `streaming.hub`); on one Redis plain PUBLISH.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

import settings

from . import keys
from .connection import queue_script, run_pipeline
from .scripts import LuaScript

INDEX_SCRIPT = LuaScript.load(__file__, "index_order")
TRACK_SCRIPT = LuaScript.load(__file__, "track_active")
APPEND_SCRIPT = LuaScript.load(__file__, "append_account").with_functions(index_order=INDEX_SCRIPT)


def clustered() -> bool:
    return settings.current().redis.cluster


def publish_command() -> str:
    """What the scripts publish with: sharded pub/sub on a cluster."""
    return "SPUBLISH" if clustered() else "PUBLISH"


def publish_keys(order_id: str, owner: str | None) -> list[str]:
    """publish.lua's keys: the order's, then on one Redis the active set and the owner's."""
    order = [keys.state_key(order_id), keys.history_key(order_id), keys.channel(order_id)]
    if clustered():
        return order
    order.append(keys.active_orders_key())
    if owner:
        order += account_keys(owner)
    return order


def account_keys(account_id: str) -> list[str]:
    """append_account.lua's keys."""
    return [
        keys.account_events_key(account_id),
        keys.account_orders_key(account_id),
        keys.account_channel(account_id),
    ]


def owner_keys(order_id: str, account_id: str) -> list[str]:
    """record_owner.lua's keys: the order's state, and on one Redis the account's index."""
    state = [keys.state_key(order_id)]
    return state if clustered() else [*state, keys.account_orders_key(account_id)]


@dataclass(frozen=True)
class Call:
    """One script call that follows a commit on a cluster."""

    script: LuaScript
    keys: list[str]
    args: list[Any]


def track(order_id: str, terminal: bool, at_ms: int) -> Call:
    """The active set's change for an update of `order_id` made at `at_ms`."""
    args = [order_id, "1" if terminal else "0", at_ms]
    return Call(TRACK_SCRIPT, [keys.active_orders_key()], args)


def index(order_id: str, account_id: str, seen_ms: float, ttl_seconds: int) -> Call:
    """The order's entry in its account's index (record_owner.lua's second half)."""
    args = [order_id, seen_ms, ttl_seconds]
    return Call(INDEX_SCRIPT, [keys.account_orders_key(account_id)], args)


def queue_intent(pipe: Pipeline, order_id: str, terminal: bool, at_ms: int) -> bool:
    """On a cluster, queue a non-terminal order's entry in the active set ahead of its commit;
    True when something was queued (one reply to skip)."""
    if not clustered() or terminal:
        return False
    call = track(order_id, False, at_ms)
    queue_script(pipe, call.script, call.keys, call.args)
    return True


def queue_followups(pipe: Pipeline, calls: Sequence[Call]) -> None:
    for call in calls:
        queue_script(pipe, call.script, call.keys, call.args)


def run_followups(calls: Sequence[Call]) -> None:
    """Run what follows a batch of commits (nothing on one Redis: the commit did it all)."""
    if calls:
        run_pipeline(lambda pipe: queue_followups(pipe, calls))
