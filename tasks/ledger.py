"""What fulfillment has already done to the outside world, per order, in Redis.

The ledger holds the facts a redelivered or retried step needs so it never repeats a side
effect: the order's WHMCS client and products (read once from Salesforce) and, written
immediately after AddOrder returns, the WHMCS order it created. The provisioning lock keeps
two deliveries of the same step from creating two WHMCS orders at the same moment; it is a
lease, not a guarantee, which is why the step also looks the order up in WHMCS first.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from integrations import OrderLine, TransientError, WhmcsOrder
from notifier import keys
from notifier.connection import get_redis

_LEDGER_TTL_SECONDS = 90 * 24 * 3600
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class OrderContext:
    """What provisioning needs from Salesforce."""

    client_id: int
    lines: tuple[OrderLine, ...]


def _key(order_id: str) -> str:
    return keys.order_key(order_id, "ledger")


def save_context(order_id: str, context: OrderContext) -> None:
    lines = [[line.product_id, line.quantity, line.name] for line in context.lines]
    value = json.dumps({"clientId": context.client_id, "lines": lines})
    _write(order_id, "context", value)


def load_context(order_id: str) -> OrderContext | None:
    raw = get_redis().hget(_key(order_id), "context")
    if not raw:
        return None
    data = json.loads(raw)
    lines = tuple(OrderLine(product_id=p, quantity=q, name=n) for p, q, n in data["lines"])
    return OrderContext(client_id=int(data["clientId"]), lines=lines)


def save_whmcs_order(order_id: str, order: WhmcsOrder) -> None:
    value = json.dumps({"orderId": order.order_id, "serviceIds": list(order.service_ids)})
    _write(order_id, "whmcsOrder", value)


def load_whmcs_order(order_id: str) -> WhmcsOrder | None:
    raw = get_redis().hget(_key(order_id), "whmcsOrder")
    if not raw:
        return None
    data = json.loads(raw)
    return WhmcsOrder(order_id=int(data["orderId"]), service_ids=tuple(data["serviceIds"]))


def _write(order_id: str, field: str, value: str) -> None:
    pipe = get_redis().pipeline(transaction=True)
    pipe.hset(_key(order_id), field, value)
    pipe.expire(_key(order_id), _LEDGER_TTL_SECONDS)
    pipe.execute()


@contextmanager
def exclusive(order_id: str, purpose: str, lease_seconds: float) -> Iterator[None]:
    """Hold a per-order lease for the block, or raise TransientError when someone else does."""
    key = keys.order_key(order_id, f"lock:{purpose}")
    token = uuid.uuid4().hex
    client = get_redis()
    if not client.set(key, token, nx=True, px=int(lease_seconds * 1000)):
        raise TransientError(
            "STEP_IN_PROGRESS", f"another worker is running {purpose}", system="fulfillment"
        )
    try:
        yield
    finally:
        # Compare-and-delete: never release a lease that expired and was taken by another.
        client.eval(_RELEASE_LUA, 1, key, token)
