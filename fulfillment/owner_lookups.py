"""Asking Salesforce who owns orders not submitted yet: batched, single-flight and bounded.

Requests do not call Salesforce themselves. They queue the order id and wait; a few lookup
workers (`SALESFORCE_LOOKUP_CONCURRENCY`, so never more calls at once) each take whatever has
queued, up to `MAX_BATCH` ids, and ask for all of them in one SOQL query (`batching.py`). At
a trickle that is one query per order, as fast as a direct call; in a storm of first views (a
campaign email, a restart of every page) thousands of lookups become a few dozen API calls.

Single-flight, twice: an order already queued or being asked about in this process is joined,
not queued again; and across processes each id is claimed with a short Redis lock before it
is asked for, so an order another process is asking about is waited for (its answer lands in
the order's owner record), not asked again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from integrations import OrderFacts, TransientError
from notifier import keys, owners
from notifier.connection import get_redis

from .batching import Batched, Waiting
from .metrics import OWNERSHIP_LOOKUP_BATCH, OWNERSHIP_LOOKUPS

log = logging.getLogger(__name__)

#: Ids per query: well inside SOQL's statement length limit (100,000 characters).
MAX_BATCH = 200
#: How long an order stays claimed by one process's lookup (and the longest another waits).
CLAIM_SECONDS = 15
UNKNOWN_TTL_SECONDS = 60
_POLL_SECONDS = 0.05

#: fetch(order ids) -> {order id: its owner and summary, or None for no such order}
Fetch = Callable[[list[str]], dict[str, OrderFacts | None]]


@dataclass(frozen=True)
class _Outcome:
    """What became of one order's lookup."""

    account: str | None = None
    error: BaseException | None = None
    #: Another process claimed it: wait for its answer in Redis.
    elsewhere: bool = False


class OwnerLookups:
    """The process's queue of owner lookups and the workers that batch them."""

    def __init__(self, fetch: Fetch, concurrency: int, cache_seconds: int) -> None:
        self._fetch = fetch
        self._cache_seconds = cache_seconds
        self._batched: Batched[str, _Outcome] = Batched(
            self._lookup, concurrency, MAX_BATCH, "owner-lookups",
            on_join=OWNERSHIP_LOOKUPS.labels("coalesced").inc,
        )  # fmt: skip

    def owner_of(self, order_id: str, waiting: Waiting | None = None) -> str | None:
        """The order's AccountId as Salesforce says (None: no such order). Blocks until
        answered, inside `waiting` (a stream gives up its opening slot meanwhile); raises
        TransientError when Salesforce could not be asked."""
        outcome = self._batched.get(order_id, waiting) or _Outcome(error=_unavailable())
        if outcome.error is not None:
            raise outcome.error
        if outcome.elsewhere:
            return _await_other_process(order_id)
        return outcome.account

    def _lookup(self, batch: list[str]) -> dict[str, _Outcome]:
        """Ask Salesforce about the ids this process could claim; each id's outcome."""
        try:
            mine, answered, elsewhere = _claim(batch)
            answers = {**answered, **(self._ask(mine) if mine else {})}
        except Exception as exc:  # Salesforce or Redis: every request of the batch learns it
            log.warning("owner lookup of %d orders failed: %r", len(batch), exc)
            OWNERSHIP_LOOKUPS.labels("error").inc(len(batch))
            error = exc if isinstance(exc, TransientError) else _unavailable()
            return {order_id: _Outcome(error=error) for order_id in batch}
        outcome = {order_id: _Outcome(account=account) for order_id, account in answers.items()}
        outcome.update({order_id: _Outcome(elsewhere=True) for order_id in elsewhere})
        OWNERSHIP_LOOKUPS.labels("other-process").inc(len(elsewhere))
        return outcome

    def _ask(self, order_ids: list[str]) -> dict[str, str | None]:
        try:
            OWNERSHIP_LOOKUP_BATCH.observe(len(order_ids))
            facts = self._fetch(order_ids)
            answers = {o: f.account_id if f else None for o, f in facts.items()}
            # The summary rides along: the order's page and list need no read of their own.
            summaries = {o: f.summary.as_json() for o, f in facts.items() if f}
            owners.record_answers(answers, self._cache_seconds, UNKNOWN_TTL_SECONDS, summaries)
        finally:
            _release(order_ids)
        found = sum(1 for account in answers.values() if account)
        OWNERSHIP_LOOKUPS.labels("salesforce").inc(found)
        OWNERSHIP_LOOKUPS.labels("salesforce-unknown").inc(len(answers) - found)
        return answers


def _claim(batch: list[str]) -> tuple[list[str], dict[str, str | None], list[str]]:
    """In one round trip: the ids this process now owns the lookup of, the ids answered
    meanwhile (read back, not asked again), and the ids another process is asking about."""
    pipe = get_redis().pipeline(transaction=False)
    for order_id in batch:
        pipe.set(_claim_key(order_id), "1", nx=True, ex=CLAIM_SECONDS)
        owners.queue_read(pipe, order_id)
    replies = pipe.execute()
    step = 1 + owners.READ_REPLIES
    mine, answered, elsewhere, unneeded = [], {}, [], []
    for index, order_id in enumerate(batch):
        took = replies[index * step]
        record = owners.owner_record(replies[index * step + 1 : (index + 1) * step])
        if record.account_id or record.unknown:
            answered[order_id] = record.account_id
            if took:
                unneeded.append(order_id)
        elif took:
            mine.append(order_id)
        else:
            elsewhere.append(order_id)
    if unneeded:
        _release(unneeded)
    return mine, answered, elsewhere


def _release(order_ids: list[str]) -> None:
    get_redis().delete(*[_claim_key(order_id) for order_id in order_ids])


def _await_other_process(order_id: str) -> str | None:
    """Wait for the process that claimed `order_id` to record its answer."""
    deadline = time.monotonic() + CLAIM_SECONDS
    while time.monotonic() < deadline:
        record = owners.read_owner(order_id)
        if record.account_id or record.unknown:
            return record.account_id
        time.sleep(_POLL_SECONDS)
    raise _unavailable()


def _unavailable() -> TransientError:
    return TransientError(
        "SALESFORCE_UNAVAILABLE", "the order's owner could not be looked up", system="salesforce"
    )


def _claim_key(order_id: str) -> str:
    return keys.order_key(order_id, "owner-lookup")
