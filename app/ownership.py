"""Which account owns an order, and whether a caller may see it.

The owner is the order's `AccountId`. Whatever submits an order records it beside the order's
state (`notifier.owners`), so reads and streams of submitted orders ask Salesforce nothing.
An order not submitted yet is looked up once (batched, single-flight and bounded: see
`owner_lookups`) and the answer recorded the same way. A customer credential whose lookups keep
finding orders it may not see (ids Salesforce does not know, or another account's orders) gets
429 with `Retry-After` after `OWNERSHIP_MISS_LIMIT` of them per window, so it cannot spend the
org's API quota.
"""

from __future__ import annotations

from flask import current_app

from integrations import SalesforceGateway
from notifier import keys, owners
from notifier.connection import get_redis
from notifier.order_ids import normalize_salesforce_id
from notifier.owners import OwnerRecord
from settings import WebSettings

from .auth import READ_SCOPES, Forbidden, Principal
from .errors import ApiError
from .metrics import OWNERSHIP_LOOKUPS
from .owner_lookups import OwnerLookups, Waiting


class RateLimited(ApiError):
    """429: the credential spent its lookups on orders it may not see."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "RATE_LIMITED",
            "too many requests for orders this account may not see; try again later",
            {"Retry-After": str(max(1, retry_after))},
        )


class Ownership:
    """Answers "who owns this order" for one web process."""

    def __init__(self, gateway: SalesforceGateway, web: WebSettings) -> None:
        self.miss_limit = web.ownership_miss_limit
        self.miss_window = web.ownership_miss_window_seconds
        self.lookups = OwnerLookups(
            gateway.get_account_ids,
            concurrency=web.salesforce_lookup_concurrency,
            cache_seconds=web.ownership_cache_seconds,
        )

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

    def count_miss(self, credential: str) -> None:
        """A lookup for `credential` found an order it may not see."""
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(_miss_key(credential))
        pipe.expire(_miss_key(credential), self.miss_window, nx=True)
        pipe.execute()

    def _check_ration(self, credential: str) -> None:
        client = get_redis()
        misses = int(client.get(_miss_key(credential)) or 0)
        if misses >= self.miss_limit:
            OWNERSHIP_LOOKUPS.labels("rate-limited").inc()
            raise RateLimited(int(client.ttl(_miss_key(credential))))


def _miss_key(credential: str) -> str:
    return f"{keys.namespace()}:lookup-misses:{{{credential}}}"


def ownership() -> Ownership:
    return current_app.extensions["ownership"]


def authorize_read(
    principal: Principal,
    order_id: str,
    record: OwnerRecord | None = None,
    waiting: Waiting | None = None,
) -> None:
    """Raise unless `principal` may read `order_id` (404 when the order does not exist).
    `record` is the order's owner record when the caller read it already; a Salesforce
    lookup, if one is needed, is waited for inside `waiting`."""
    if principal.order_id is not None:
        if principal.order_id != order_id:
            raise Forbidden("TICKET_SCOPE", "this ticket is for another order")
        return
    if principal.has_scope(*READ_SCOPES):
        if not ownership().exists(order_id, waiting=waiting, record=record):
            raise ApiError(404, "ORDER_NOT_FOUND", "no such order")
        return
    mine = normalize_salesforce_id(principal.account_id)
    if mine is None:
        raise Forbidden("SCOPE_MISSING", "the token names no account and no orders scope")
    owner = ownership().owner_of(order_id, rationed_for=mine, waiting=waiting, record=record)
    if owner != mine:
        ownership().count_miss(mine)
    if owner is None:
        raise ApiError(404, "ORDER_NOT_FOUND", "no such order")
    if owner != mine:
        raise Forbidden("OTHER_ACCOUNT", "this order belongs to another account")
