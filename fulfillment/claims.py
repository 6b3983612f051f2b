"""Claiming starts in Redis: one read and one commit per order, for a whole batch at once.

A start is the `queued` event, published compare-and-set (`notifier.publish`'s rules): it is
refused while the order is anything but new or failed, so concurrent triggers start exactly
one pipeline. Each order costs two commands: `lua/read_start.lua` reads its state and the
ledger's facts (where a new run resumes, the epoch), and `lua/claim.lua` marks it alive,
records its owner and publishes the claim. A batch's reads are one pipeline, its commits
another.

Between the two, the orders nobody recorded (no state, no owner) are asked about in one
Salesforce query (`ask`): those Salesforce does not know are refused (`UnknownOrder`); the
others' owners and summaries are recorded by their claim, so their streams and pages never
ask again. Salesforce down: the starts go ahead unchecked (the pipeline fails an order that
turns out unknown).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from redis.client import Pipeline

from integrations import OrderFacts, TransientError
from notifier import Published, Update, keys, owners, publish_many
from notifier.connection import queue_script
from notifier.owners import RECORD_SCRIPT, record_parts
from notifier.publish import PUBLISH_SCRIPT, Commit, OrderRead, Publishing, commit_parts
from notifier.scripts import LuaScript

from .ledger import ledger_key
from .recovery import alive_key

log = logging.getLogger(__name__)

_READ = LuaScript.load(__file__, "read_start")
_CLAIM = LuaScript.load(__file__, "claim").with_functions(
    record_owner=RECORD_SCRIPT, publish=PUBLISH_SCRIPT
)
#: How long "Salesforce has no such order" is remembered (as the web's lookups do).
UNKNOWN_TTL_SECONDS = 60

#: Salesforce's facts about orders (None: it has no such order), asked in one query.
Ask = Callable[[list[str]], Mapping[str, OrderFacts | None]]


class UnknownOrder(LookupError):
    """Raised when Salesforce has no such order."""


def claim_all(
    updates: Sequence[Update], alive_seconds: float, ask: Ask | None = None
) -> list[Published]:
    """Claim every update's order (each update a `queued` payload); one `Published` per
    update, in order. Its `extra` is (the step that failed last, the epoch) as read."""
    return publish_many(updates, _Claiming(alive_seconds, ask))


class _Claiming(Publishing):
    """`publish_many` with a start's read (read_start.lua), the unrecorded orders asked about
    between read and commit, and a start's commit (claim.lua)."""

    def __init__(self, alive_seconds: float, ask: Ask | None) -> None:
        self.alive_seconds, self.ask = max(1, int(alive_seconds)), ask
        self.learned: dict[str, OrderFacts] = {}

    def queue_read(self, pipe: Pipeline, order_id: str) -> None:
        queue_script(pipe, _READ, [keys.state_key(order_id), ledger_key(order_id)], [])

    def read(self, reply: Any) -> OrderRead:
        failed_step, epoch = reply[4:]
        facts = (str(failed_step) if failed_step else None, int(epoch or 0))
        return OrderRead.from_reply(reply[:4], facts)

    def review(
        self, pending: Mapping[int, Update], reads: dict[int, OrderRead]
    ) -> dict[int, Published]:
        """Ask Salesforce about the orders nobody recorded: refuse those it does not know,
        and decide the others on the owner it names."""
        unrecorded = {i: u.order_id for i, u in pending.items() if not reads[i].owner and
                      reads[i].current is None}  # fmt: skip
        if self.ask is None or not unrecorded:
            return {}
        try:
            facts = self.ask(sorted(set(unrecorded.values())))
        except TransientError as exc:
            log.warning("%d orders started unchecked (%s)", len(unrecorded), exc.code)
            return {}
        refused = {}
        for index, order_id in unrecorded.items():
            found = facts.get(order_id)
            if order_id in facts and found is None:
                owners.record_unknown(order_id, UNKNOWN_TTL_SECONDS)
                refused[index] = Published(order_id, error=UnknownOrder(order_id))
            elif found is not None and found.account_id:
                self.learned[order_id] = found
                reads[index] = replace(reads[index], owner=found.account_id)
        return refused

    def queue_commit(self, pipe: Pipeline, commit: Commit) -> None:
        oid = commit.update.order_id
        publish_keys, publish_args = commit_parts(commit)
        facts = self.learned.get(oid)
        owner = _owner_args(oid, facts) if facts is not None else ""
        queue_script(pipe, _CLAIM, [alive_key(oid), *publish_keys],
                     [self.alive_seconds, owner, *publish_args])  # fmt: skip


def _owner_args(order_id: str, facts: OrderFacts) -> str:
    _, args = record_parts(order_id, str(facts.account_id), 0, facts.summary.as_json())
    return json.dumps([str(arg) for arg in args])


def claimed_facts(claim: Published) -> tuple[str | None, int]:
    """The step that failed last and the epoch, as the claim read them."""
    extra: Any = claim.extra or (None, 0)
    return extra[0], int(extra[1])
