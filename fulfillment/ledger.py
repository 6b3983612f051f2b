"""What fulfillment has already done to the outside world, per order, in Redis.

The ledger holds the facts a redelivered or retried step needs so it never repeats a side
effect: the order's WHMCS client and products (read once from Salesforce), the WHMCS order it
created (written immediately after AddOrder returns), and the step that failed (where an
operator retry resumes). The same hash holds recovery's epoch, running epoch and strikes
(`recovery.py` owns those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from integrations import OrderLine, WhmcsOrder
from notifier import keys
from notifier.connection import get_redis

_LEDGER_TTL_SECONDS = 90 * 24 * 3600
#: The field of the step that failed last.
FAILED_STEP = "failedStep"


@dataclass(frozen=True)
class OrderContext:
    """What provisioning needs from Salesforce."""

    client_id: int
    lines: tuple[OrderLine, ...]


def _key(order_id: str) -> str:
    return keys.order_key(order_id, "ledger")


#: The ledger's fields: what provisioning needs, and the WHMCS order it created.
CONTEXT, WHMCS_ORDER = "context", "whmcsOrder"
#: How long a ledger lives after its last write.
TTL_SECONDS = _LEDGER_TTL_SECONDS


def encode_context(context: OrderContext) -> str:
    lines = [[line.product_id, line.quantity, line.name] for line in context.lines]
    return json.dumps({"clientId": context.client_id, "lines": lines})


def decode_context(raw: str | bytes | None) -> OrderContext | None:
    if not raw:
        return None
    data = json.loads(raw)
    lines = tuple(OrderLine(product_id=p, quantity=q, name=n) for p, q, n in data["lines"])
    return OrderContext(client_id=int(data["clientId"]), lines=lines)


def encode_whmcs_order(order: WhmcsOrder) -> str:
    return json.dumps({"orderId": order.order_id, "serviceIds": list(order.service_ids)})


def decode_whmcs_order(raw: str | bytes | None) -> WhmcsOrder | None:
    if not raw:
        return None
    data = json.loads(raw)
    return WhmcsOrder(order_id=int(data["orderId"]), service_ids=tuple(data["serviceIds"]))


def save_context(order_id: str, context: OrderContext) -> None:
    _write(order_id, CONTEXT, encode_context(context))


def load_context(order_id: str) -> OrderContext | None:
    return decode_context(get_redis().hget(_key(order_id), CONTEXT))


def save_whmcs_order(order_id: str, order: WhmcsOrder) -> None:
    _write(order_id, WHMCS_ORDER, encode_whmcs_order(order))


def load_whmcs_order(order_id: str) -> WhmcsOrder | None:
    return decode_whmcs_order(get_redis().hget(_key(order_id), WHMCS_ORDER))


def _write(order_id: str, field: str, value: str) -> None:
    pipe = get_redis().pipeline(transaction=True)
    pipe.hset(_key(order_id), field, value)
    pipe.expire(_key(order_id), _LEDGER_TTL_SECONDS)
    pipe.execute()


def save_failed_step(order_id: str, step: str) -> None:
    _write(order_id, FAILED_STEP, step)


def load_failed_step(order_id: str) -> str | None:
    value = get_redis().hget(_key(order_id), FAILED_STEP)
    return str(value) if value else None


def ledger_key(order_id: str) -> str:
    return _key(order_id)
