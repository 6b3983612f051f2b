"""A step's own Redis bookkeeping: one script call when it begins, one when it ends.

Every step does the same things around its work: mark the order alive and its epoch running,
read the order's state and the ledger, then save what it learned, clear the running mark and
the strikes, leave an alive mark for the next step and publish its update. Done one command
at a time that was a dozen round trips per step; here it is two calls:

- `begin` (`lua/begin_step.lua`): the marks, and one read of everything the step decides on
  (state, sequence number, owner, epoch, context, WHMCS order, failed step): a `StepStart`.
- `finish` (`lua/finish_step.lua`, which calls `notifier`'s publish and record_owner scripts
  as functions, so their rules stay written once): the ledger's new facts, the marks, the
  owner when the step learned it, and the update, compare-and-set on what `begin` read. If
  the order moved on meanwhile (a retry announced, a reconciler), the update is published
  again the ordinary way, which reads afresh.

`announce` publishes mid-step on what `begin` read (provisioning's announcement), one call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from integrations import WhmcsOrder
from notifier import Published, Update, keys, placement, publish
from notifier.connection import run_script
from notifier.owners import RECORD_SCRIPT, index_calls, record_parts
from notifier.publish import (
    PUBLISH_SCRIPT,
    Commit,
    OrderRead,
    commit_outcome,
    commit_parts,
    decide,
    followups,
)
from notifier.scripts import LuaScript

from . import ledger
from .ledger import OrderContext, ledger_key
from .plan import Job
from .recovery import alive_key

log = logging.getLogger(__name__)

_BEGIN = LuaScript.load(__file__, "begin_step")
_FINISH = LuaScript.load(__file__, "finish_step").with_functions(
    record_owner=RECORD_SCRIPT, publish=PUBLISH_SCRIPT
)


@dataclass(frozen=True)
class StepStart:
    """What a step began on, read in the same call that marked it running."""

    #: The order's state as read (what an update is decided on, compare-and-set).
    read: OrderRead
    epoch: int
    context: OrderContext | None
    whmcs_order: WhmcsOrder | None
    failed_step: str | None

    @property
    def state(self) -> dict[str, Any] | None:
        return self.read.current


def begin(job: Job, alive_seconds: float) -> StepStart:
    """Mark `job`'s step running (alive for `alive_seconds`, renewed by the caller) and read
    what it needs."""
    oid = job.order_id
    reply = run_script(
        _BEGIN,
        [alive_key(oid), ledger_key(oid), keys.state_key(oid)],
        [job.epoch, max(1, int(alive_seconds))],
    )
    epoch, context, whmcs_order, failed_step = reply[4:]
    return StepStart(
        read=OrderRead.from_reply(reply[:4]),
        epoch=int(epoch or 0),
        context=ledger.decode_context(context),
        whmcs_order=ledger.decode_whmcs_order(whmcs_order),
        failed_step=str(failed_step) if failed_step else None,
    )


@dataclass(frozen=True)
class Owner:
    """The order's account and summary, when a step read them from Salesforce."""

    account_id: str
    summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class StepEnd:
    """What a step hands over as it ends: its update (None: nothing to announce), the
    context it learned for the ledger, the owner it read, and whether it is the last step
    (nothing follows: no alive mark for a next one)."""

    update: Mapping[str, Any] | None
    context: OrderContext | None = None
    owner: Owner | None = None
    last: bool = False


def finish(job: Job, start: StepStart, end: StepEnd, waiting_seconds: float) -> str | None:
    """End `job`'s step in one call: save the context, clear the running mark and strikes,
    keep the order alive `waiting_seconds` for the next step (unless `end.last`), record the
    owner, and publish the update. Returns the event id (None when there was no update);
    raises IllegalTransition, as `publish` does, when the update was refused (the rest is
    done either way)."""
    oid, owner, update = job.order_id, end.owner, end.update
    read = replace(start.read, owner=owner.account_id) if owner else start.read
    decided = decide(Update(oid, update), read) if update is not None else None
    commit = decided if isinstance(decided, Commit) else None
    account = owner.account_id if owner else None
    publish_keys, publish_args = (
        commit_parts(commit) if commit else (placement.publish_keys(oid, account), [])
    )
    fields = {ledger.CONTEXT: ledger.encode_context(end.context)} if end.context else {}
    alive = 0 if end.last else max(1, int(waiting_seconds))
    owner_args = _owner_args(oid, owner)
    reply = run_script(
        _FINISH,
        [alive_key(oid), ledger_key(oid), *publish_keys],
        [job.epoch, alive, json.dumps(fields), ledger.TTL_SECONDS,
         json.dumps(owner_args) if owner_args else "", *publish_args],
        replicated=True,
    )  # fmt: skip
    indexed = index_calls(oid, account, float(owner_args[3])) if account and owner_args else []
    if commit is None:
        placement.run_followups(indexed)
        if isinstance(decided, Published) and decided.error is not None:
            raise decided.error
        return None
    return _settled(commit, reply, indexed)


def announce(job: Job, start: StepStart, update: Mapping[str, Any]) -> str:
    """Publish `update` on what `begin` read, in one call; raises IllegalTransition when
    refused."""
    decided = decide(Update(job.order_id, update), start.read)
    if isinstance(decided, Published):
        raise decided.error or RuntimeError(f"order {job.order_id}: not published")
    reply = run_script(PUBLISH_SCRIPT, *commit_parts(decided), replicated=True)
    return _settled(decided, reply)


def _settled(commit: Commit, reply: Any, calls: list[placement.Call] | None = None) -> str:
    """The event id `reply` gave `commit`, once what follows it on a cluster (and `calls`) ran."""
    outcome = commit_outcome(reply, commit)
    placement.run_followups([*(calls or []), *(followups(commit, outcome) if outcome else [])])
    if outcome is None:  # the order moved on since `begin`: decide again on a fresh read
        log.info("order %s: state moved during the step; publishing afresh", commit.update.order_id)
        return publish(commit.update.order_id, commit.update.update)
    if outcome.error is not None:
        raise outcome.error
    return str(outcome.event_id)


def _owner_args(order_id: str, owner: Owner | None) -> list[str]:
    """record_owner.lua's arguments (none without an owner to record)."""
    if owner is None:
        return []
    _, args = record_parts(order_id, owner.account_id, 0, owner.summary)
    return [str(arg) for arg in args]
