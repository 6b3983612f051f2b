"""Whether a caller may see an order: the HTTP side of `fulfillment.ownership`.

A customer sees its account's orders; a service scope sees any that exists; a ticket sees its
one order. A credential whose lookups keep landing on orders it may not see gets 429 with
`Retry-After`.
"""

from __future__ import annotations

from flask import current_app

from fulfillment.owner_lookups import Waiting
from fulfillment.ownership import LookupsExhausted, Ownership
from notifier.order_ids import normalize_salesforce_id
from notifier.owners import OwnerRecord

from .auth import READ_SCOPES, Forbidden, Principal
from .errors import ApiError


class RateLimited(ApiError):
    """429: the credential spent its lookups on orders it may not see."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "RATE_LIMITED",
            "too many requests for orders this account may not see; try again later",
            {"Retry-After": str(max(1, retry_after))},
        )


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
    try:
        owner = ownership().owner_of(order_id, rationed_for=mine, waiting=waiting, record=record)
    except LookupsExhausted as exc:
        raise RateLimited(exc.retry_after) from None
    if owner != mine:
        ownership().count_miss(mine)
    if owner is None:
        raise ApiError(404, "ORDER_NOT_FOUND", "no such order")
    if owner != mine:
        raise Forbidden("OTHER_ACCOUNT", "this order belongs to another account")
