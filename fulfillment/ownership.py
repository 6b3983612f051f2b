"""Which account owns an order, and whether it exists: recorded, or asked of Salesforce.

The owner is the order's `AccountId`. Whatever submits an order records it beside the order's
state (`notifier.owners`), so reads and streams of submitted orders ask Salesforce nothing.
An order not submitted yet is looked up once (batched, single-flight and bounded: see
`owner_lookups`) and the answer recorded the same way. A customer credential whose lookups keep
finding orders it may not see (ids Salesforce does not know, or another account's orders) is
refused (`LookupsExhausted`) after `OWNERSHIP_MISS_LIMIT` of them per window, so it cannot
spend the org's API quota. The web, the CLI and the listener share it.
"""

from __future__ import annotations

import logging
import time

from integrations import OrderFacts, SalesforceGateway, TransientError
from notifier import counters, keys, owners
from notifier.connection import get_redis
from notifier.order_ids import normalize_salesforce_id
from notifier.owners import OwnerRecord
from settings import WebSettings

from .batching import Batched
from .metrics import OWNERSHIP_LOOKUPS
from .owner_lookups import MAX_BATCH, UNKNOWN_TTL_SECONDS, OwnerLookups, Waiting

log = logging.getLogger(__name__)

#: Queries in flight at once for the triggers' asks. Two, not the streams' lookup concurrency:
#: triggers come from services (the listener's batches, a back office), each waits on its
#: ask only, and the fewer queries in flight, the more orders each one carries. With eight, a
#: flood of triggers asked about 1.2 orders per query (2.84 Salesforce calls per order over
#: its life); with two, about 2.2 (2.45). At a trickle it is one query per order either way.
TRIGGER_ASK_CONCURRENCY = 2


class LookupsExhausted(Exception):
    """The credential spent its lookups on orders it may not see; `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"lookups exhausted for {retry_after} s")
        self.retry_after = retry_after


class Ownership:
    """Answers "who owns this order" for one web process."""

    def __init__(self, gateway: SalesforceGateway, web: WebSettings) -> None:
        self.miss_limit = web.ownership_miss_limit
        self.miss_window = web.ownership_miss_window_seconds
        self.gateway, self.cache_seconds = gateway, web.ownership_cache_seconds
        self.lookups = OwnerLookups(
            gateway.get_order_facts,
            concurrency=web.salesforce_lookup_concurrency,
            cache_seconds=web.ownership_cache_seconds,
        )
        #: What Salesforce says of orders a trigger asks about, batched like the lookups but
        #: recording nothing (the trigger's claim records it): `fulfillment.claims.Ask`.
        self.facts: Batched[str, OrderFacts | None] = Batched(
            gateway.get_order_facts, TRIGGER_ASK_CONCURRENCY, MAX_BATCH, "order-facts"
        )

    def ask(self, order_ids: list[str]) -> dict[str, OrderFacts | None]:
        """Salesforce's facts of `order_ids` (None: no such order), batched with other
        triggers' asks; raises TransientError when Salesforce could not be asked."""
        return self.facts.get_many(order_ids)

    def owner_of(
        self,
        order_id: str,
        rationed_for: str | None = None,
        waiting: Waiting | None = None,
        record: OwnerRecord | None = None,
    ) -> str | None:
        """The 18-character AccountId owning `order_id`, or None if Salesforce has no such
        order. `rationed_for` names the customer credential a lookup would be spent on;
        `waiting` is the context to wait for a lookup in; `record` is what Redis said, when
        the caller read it already."""
        record = record or owners.read_owner(order_id)
        if record.account_id:
            OWNERSHIP_LOOKUPS.labels("recorded").inc()
            return record.account_id
        if record.unknown:
            OWNERSHIP_LOOKUPS.labels("known-unknown").inc()
            return None
        if rationed_for is not None:
            self._check_ration(rationed_for)
        return normalize_salesforce_id(self.lookups.owner_of(order_id, waiting))

    def exists(
        self,
        order_id: str,
        fresh: bool = False,
        waiting: Waiting | None = None,
        record: OwnerRecord | None = None,
    ) -> bool:
        """Whether the order exists: it was submitted, or Salesforce knows it. `fresh`
        distrusts a remembered "unknown" (an order being submitted was just created)."""
        record = record or owners.read_owner(order_id)
        if record.submitted or record.account_id:
            return True
        if record.unknown:
            if not fresh:
                return False
            owners.forget_unknown(order_id)
        return self.lookups.owner_of(order_id, waiting) is not None

    def list_account(self, account_id: str) -> None:
        """Put the account's orders in its index (for its list and its stream), asking
        Salesforce at most once per `OWNERSHIP_CACHE_SECONDS` per account, across processes:
        orders the pipeline never saw (placed, not approved) are listed too. Salesforce down:
        the index serves what it holds, and the next view asks again."""
        marker = f"{keys.namespace()}:account:{{{account_id}}}:listed"
        if not get_redis().set(marker, "1", nx=True, ex=max(1, self.cache_seconds)):
            return
        try:
            facts = self.gateway.account_orders(account_id)
        except TransientError as exc:
            get_redis().delete(marker)
            log.warning("orders of an account not listed (%s)", exc.code)
            return
        # Newest first, as the query answers: scored a millisecond apart, in that order.
        now_ms = time.time() * 1000
        owners.record_answers(
            {order_id: f.account_id for order_id, f in facts.items()},
            self.cache_seconds,
            UNKNOWN_TTL_SECONDS,
            {order_id: f.summary.as_json() for order_id, f in facts.items()},
            {order_id: now_ms - rank for rank, order_id in enumerate(facts)},
        )

    def count_miss(self, credential: str) -> None:
        """A lookup for `credential` found an order it may not see."""
        counters.hit(_miss_key(credential), self.miss_window)

    def _check_ration(self, credential: str) -> None:
        client = get_redis()
        misses = int(client.get(_miss_key(credential)) or 0)
        if misses >= self.miss_limit:
            OWNERSHIP_LOOKUPS.labels("rate-limited").inc()
            raise LookupsExhausted(int(client.ttl(_miss_key(credential))))


def _miss_key(credential: str) -> str:
    return f"{keys.namespace()}:lookup-misses:{{{credential}}}"
