"""Asking Salesforce who owns orders not submitted yet: batched, single-flight and bounded.

Requests do not call Salesforce themselves. They queue the order id and wait; a few lookup
workers (`SALESFORCE_LOOKUP_CONCURRENCY`, so never more calls at once) each take whatever has
queued, up to `MAX_BATCH` ids, and ask for all of them in one SOQL query. At a trickle that is
one query per order, as fast as a direct call; in a storm of first views (a campaign email,
a restart of every page) thousands of lookups become a few dozen API calls.

Single-flight, twice: an order already queued or being asked about in this process is joined,
not queued again; and across processes each id is claimed with a short Redis lock before it
is asked for, so an order another process is asking about is waited for (its answer lands in
the order's owner record), not asked again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from integrations import OrderFacts, TransientError
from notifier import keys, owners
from notifier.connection import get_redis

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
#: A context to wait in (see `streaming.admission.Admission.stepping_aside`).
Waiting = Callable[[], AbstractContextManager[None]]


@dataclass
class _Flight:
    """One order's lookup, shared by every request asking about it meanwhile."""

    done: threading.Event = field(default_factory=threading.Event)
    account: str | None = None
    error: BaseException | None = None
    #: Another process claimed it: wait for its answer in Redis.
    elsewhere: bool = False


class OwnerLookups:
    """The process's queue of owner lookups and the workers that batch them."""

    def __init__(self, fetch: Fetch, concurrency: int, cache_seconds: int) -> None:
        self._fetch = fetch
        self._workers = max(1, concurrency)
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._flights: dict[str, _Flight] = {}
        self._queue: deque[str] = deque()
        self._started = False

    def owner_of(self, order_id: str, waiting: Waiting | None = None) -> str | None:
        """The order's AccountId as Salesforce says (None: no such order). Blocks until
        answered, inside `waiting` (a stream gives up its opening slot meanwhile); raises
        TransientError when Salesforce could not be asked."""
        flight = self._join(order_id)
        with waiting() if waiting is not None else contextlib.nullcontext():
            flight.done.wait()
        if flight.error is not None:
            raise flight.error
        if flight.elsewhere:
            return _await_other_process(order_id)
        return flight.account

    def _join(self, order_id: str) -> _Flight:
        with self._lock:
            flight = self._flights.get(order_id)
            if flight is not None:
                OWNERSHIP_LOOKUPS.labels("coalesced").inc()
                return flight
            flight = self._flights[order_id] = _Flight()
            self._queue.append(order_id)
            self._start_workers()
            self._ready.notify()
            return flight

    def _start_workers(self) -> None:
        # After gunicorn forked this process, on first use: threads do not survive a fork.
        if not self._started:
            self._started = True
            for number in range(self._workers):
                name = f"owner-lookups-{number}"
                threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._ready.wait()
                count = min(MAX_BATCH, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
            self._settle(batch, self._lookup(batch))

    def _lookup(self, batch: list[str]) -> dict[str, _Flight]:
        """Ask Salesforce about the ids this process could claim; each id's outcome."""
        try:
            mine, answered, elsewhere = _claim(batch)
            answers = {**answered, **(self._ask(mine) if mine else {})}
        except Exception as exc:  # Salesforce or Redis: every request of the batch learns it
            log.warning("owner lookup of %d orders failed: %r", len(batch), exc)
            OWNERSHIP_LOOKUPS.labels("error").inc(len(batch))
            error = exc if isinstance(exc, TransientError) else _unavailable()
            return {order_id: _Flight(error=error) for order_id in batch}
        outcome = {order_id: _Flight(account=account) for order_id, account in answers.items()}
        outcome.update({order_id: _Flight(elsewhere=True) for order_id in elsewhere})
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

    def _settle(self, batch: list[str], outcome: dict[str, _Flight]) -> None:
        with self._lock:
            flights = [self._flights.pop(order_id) for order_id in batch]
        for order_id, flight in zip(batch, flights, strict=True):
            result = outcome[order_id]
            flight.account, flight.error, flight.elsewhere = (
                result.account,
                result.error,
                result.elsewhere,
            )
            flight.done.set()


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
