"""What fulfillment has already done to the outside world, per order, in Redis.

The ledger holds the facts a redelivered or retried step needs so it never repeats a side
effect: the order's WHMCS client and products (read once from Salesforce), the WHMCS order it
created (written immediately after AddOrder returns), the step that failed (where an operator
retry resumes), the order's epoch (bumped when the reconciler takes an order over), the epoch
whose step is executing (or died executing), and how many times in a row a step died (strikes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from integrations import OrderLine, WhmcsOrder
from notifier import keys
from notifier.connection import get_redis, run_script

_LEDGER_TTL_SECONDS = 90 * 24 * 3600

# Only the epoch's own mark is cleared: after a takeover the new epoch's step owns it.
_END_STEP_LUA = """
if redis.call('HGET', KEYS[1], 'runningEpoch') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'runningEpoch')
end
if ARGV[2] == '1' then redis.call('HDEL', KEYS[1], 'strikes') end
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


def save_failed_step(order_id: str, step: str) -> None:
    _write(order_id, "failedStep", step)


def load_failed_step(order_id: str) -> str | None:
    value = get_redis().hget(_key(order_id), "failedStep")
    return str(value) if value else None


def epoch(order_id: str) -> int:
    return int(get_redis().hget(_key(order_id), "epoch") or 0)


def mark_started(order_id: str, epoch: int) -> None:
    """A step of `epoch` began executing; until `mark_ended`, a takeover of `epoch` means the
    step died mid-run (a strike)."""
    get_redis().hset(_key(order_id), "runningEpoch", epoch)


def mark_ended(order_id: str, epoch: int, progressed: bool) -> None:
    """The step of `epoch` ended without dying (done, retry scheduled or failed). When it
    `progressed`, the order's strikes start over: a strike limit is for a step that keeps
    killing its worker, not for an order that is merely unlucky under many crashes."""
    run_script(_END_STEP_LUA, keys=[_key(order_id)], args=[epoch, int(progressed)])


def running_epoch(order_id: str) -> int | None:
    """The epoch whose step is executing or died executing; None between steps."""
    value = get_redis().hget(_key(order_id), "runningEpoch")
    return int(value) if value is not None else None


def count_strike(order_id: str) -> int:
    """Count one more step that died mid-run; returns the total."""
    return int(get_redis().hincrby(_key(order_id), "strikes", 1))


def ledger_key(order_id: str) -> str:
    return _key(order_id)
