"""Orders and accounts for benchmarks: valid Salesforce ids that no real record will ever have,
customer tokens for their accounts, and submitting orders the way the portal's backend does.
"""

from __future__ import annotations

import random
import string
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

import settings
from app.auth import SERVICE_SCOPE, mint_token
from notifier.order_ids import ORDER_KEY_PREFIX, normalize_salesforce_id

_ALPHABET = string.ascii_letters + string.digits
_ACCOUNT_KEY_PREFIX = "001"


def new_order_ids(count: int) -> list[str]:
    return _new_ids(count, ORDER_KEY_PREFIX)


def new_account_ids(count: int) -> list[str]:
    return _new_ids(count, _ACCOUNT_KEY_PREFIX)


def _new_ids(count: int, prefix: str) -> list[str]:
    ids: set[str] = set()
    while len(ids) < count:
        salesforce_id = normalize_salesforce_id(prefix + "".join(random.choices(_ALPHABET, k=12)))
        if salesforce_id:
            ids.add(salesforce_id)
    return list(ids)


def customer_headers(account_ids: list[str], ttl: int = 3600) -> dict[str, dict[str, str]]:
    """An `Authorization` header per account, with that account's customer token (what a
    signed-in customer's browser sends): streams then go through the ownership check."""
    web = settings.current().web

    def token(account: str) -> str:
        return mint_token(web, account_id=account, scope=None, ttl=ttl)

    return {account: {"Authorization": f"Bearer {token(account)}"} for account in set(account_ids)}


def trigger_all(web_url: str, order_ids: list[str], threads: int = 8) -> dict[str, int]:
    """Submit every order through `POST /api/orders/<id>/fulfill` with a service token, from
    parallel threads; returns how many answers had each status (or error)."""
    token = mint_token(settings.current().web, account_id=None, scope=SERVICE_SCOPE, ttl=3600)
    headers = {"Authorization": f"Bearer {token}"}
    local = threading.local()

    def trigger(order_id: str) -> str:
        if not hasattr(local, "session"):
            local.session = requests.Session()  # one per thread: Session is not thread-safe
        try:
            url = f"{web_url}/api/orders/{order_id}/fulfill"
            return str(local.session.post(url, headers=headers, timeout=60).status_code)
        except requests.RequestException as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(threads) as pool:
        return dict(Counter(pool.map(trigger, order_ids)))
