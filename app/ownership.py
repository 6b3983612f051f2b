"""Which account owns an order, and whether a caller may see it.

The owner is the order's `AccountId` in Salesforce, looked up once and cached in Redis, so
opening a stream or reading an order costs no Salesforce call after the first. An order that
Salesforce does not know is cached briefly too, so bogus ids cannot hammer Salesforce.
"""

from __future__ import annotations

from flask import current_app

from integrations import SalesforceGateway
from notifier import keys
from notifier.connection import get_redis
from notifier.order_ids import normalize_salesforce_id

from .auth import READ_SCOPES, Forbidden, Principal
from .errors import ApiError

_UNKNOWN = ""
_UNKNOWN_TTL_SECONDS = 60


def account_of(order_id: str) -> str | None:
    """The 18-character AccountId owning `order_id`, or None if Salesforce has no such order."""
    key = keys.order_key(order_id, "account")
    client = get_redis()
    cached = client.get(key)
    if cached is not None:
        return str(cached) or None
    gateway: SalesforceGateway = current_app.extensions["salesforce"]
    account = normalize_salesforce_id(gateway.get_account_id(order_id))
    ttl = current_app.config["OWNERSHIP_CACHE_SECONDS"] if account else _UNKNOWN_TTL_SECONDS
    client.set(key, account or _UNKNOWN, ex=ttl)
    return account


def authorize_read(principal: Principal, order_id: str) -> None:
    """Raise unless `principal` may read `order_id` (404 when the order does not exist)."""
    if principal.order_id is not None:
        if principal.order_id != order_id:
            raise Forbidden("TICKET_SCOPE", "this ticket is for another order")
        return
    if principal.has_scope(*READ_SCOPES):
        return
    mine = normalize_salesforce_id(principal.account_id)
    if mine is None:
        raise Forbidden("SCOPE_MISSING", "the token names no account and no orders scope")
    owner = account_of(order_id)
    if owner is None:
        raise ApiError(404, "ORDER_NOT_FOUND", "no such order")
    if owner != mine:
        raise Forbidden("OTHER_ACCOUNT", "this order belongs to another account")
