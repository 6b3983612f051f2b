"""The fulfillment steps as plain functions of a job and their collaborators (`ports`).

Each step may run more than once (retries, redelivery after a crash, a duplicate message), so
each one is idempotent by the Salesforce Order id: it checks what already happened before
acting, announces its stage only if the order has not passed it, and never creates a second
WHMCS order (the ledger, then WHMCS itself, are asked first, under a per-order lease).

A message from an older run or epoch, or for an order already in a terminal state, is stale
and does nothing (`StaleMessage`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from integrations import OrderRecord, PermanentError, WhmcsOrder
from notifier import IllegalTransition, Stage, is_terminal
from notifier.order_ids import normalize_salesforce_id

from .ledger import OrderContext
from .metrics import ORDERS
from .plan import Job, Step
from .ports import OrderEvents, Ports

log = logging.getLogger(__name__)


class StaleMessage(Exception):
    """Raised when a step belongs to an older run or epoch, or the order already finished."""


def activate(job: Job, ports: Ports) -> None:
    """Mark the order Activating in Salesforce and learn what to provision."""
    ensure_current(job, ports)
    order, _ = _load_context(job.order_id, ports)
    status = order.activation_status
    if status != "Completed":  # never move Salesforce back from a finished activation
        ports.salesforce.update_order(job.order_id, status="Activating")
        status = "Activating"
    ports.crashpoint("after-activate-write")
    announce(
        job.order_id,
        {
            "stage": Stage.ACTIVATING,
            "status": status,
            "message": "Order marked Activating in Salesforce",
            "attempt": job.attempt,
        },
        ports.events,
    )


def provision(job: Job, ports: Ports) -> None:
    """Create (once) and accept the order in WHMCS."""
    ensure_current(job, ports)
    if job.reopen:  # an operator retry starting here: Salesforce said Failed until now
        ports.salesforce.update_order(job.order_id, status="Activating")
    announce(
        job.order_id,
        {
            "stage": Stage.PROVISIONING,
            "message": "Creating the order in WHMCS",
            "attempt": job.attempt,
        },
        ports.events,
    )
    order = ports.ledger.load_whmcs_order(job.order_id) or _create_whmcs_order(job.order_id, ports)
    ports.crashpoint("before-accept")
    ports.whmcs.accept_order(order.order_id)
    ports.crashpoint("after-accept")


def _create_whmcs_order(order_id: str, ports: Ports) -> WhmcsOrder:
    context = ports.ledger.load_context(order_id) or _load_context(order_id, ports)[1]
    with ports.recovery.exclusive(order_id, "provision"):
        # Ask our ledger, then WHMCS itself (a lost AddOrder response leaves only the latter).
        order = ports.ledger.load_whmcs_order(order_id) or ports.whmcs.find_order(
            context.client_id, order_id, context.lines[0].product_id
        )
        if order is None:
            ports.crashpoint("before-addorder")
            order = ports.whmcs.add_order(context.client_id, context.lines, order_id)
            ports.crashpoint("after-addorder")
        ports.ledger.save_whmcs_order(order_id, order)
    return order


def _load_context(order_id: str, ports: Ports) -> tuple[OrderRecord, OrderContext]:
    """Read the order, its WHMCS client and products from Salesforce into the ledger."""
    order = ports.salesforce.get_order(order_id)
    account = normalize_salesforce_id(order.account_id)
    if account:  # the trigger may not have known it (Salesforce was down): streams need it
        ports.events.record_owner(order_id, account)
    if order.client_id is None:
        raise PermanentError(
            "WHMCS_CLIENT_MISSING",
            "the order's Account has no WHMCS client id",
            system="salesforce",
        )
    lines = tuple(ports.salesforce.get_order_lines(order_id))
    context = OrderContext(client_id=order.client_id, lines=lines)
    ports.ledger.save_context(order_id, context)
    return order, context


def complete(job: Job, ports: Ports) -> None:
    """Mark the order Completed in Salesforce, with its WHMCS order id."""
    ensure_current(job, ports)
    order = ports.ledger.load_whmcs_order(job.order_id)
    if order is None:
        raise PermanentError(
            "WHMCS_ORDER_UNKNOWN", "no WHMCS order was recorded for this order", system="whmcs"
        )
    ports.salesforce.update_order(job.order_id, status="Completed", whmcs_order_id=order.order_id)
    ports.crashpoint("after-complete-write")
    finished = announce(
        job.order_id,
        {
            "stage": Stage.COMPLETED,
            "status": "Completed",
            "message": f"Service active: WHMCS order {order.order_id}",
            "attempt": job.attempt,
            "whmcs": {"orderId": order.order_id, "serviceIds": list(order.service_ids)},
        },
        ports.events,
    )
    if finished:
        ORDERS.labels("completed").inc()
        log.info(
            "order completed",
            extra={"order_id": job.order_id, "outcome": "completed", "run": job.run},
        )


#: The steps of the chain, by their type.
RULES: dict[Step, Callable[[Job, Ports], None]] = {
    Step.ACTIVATE: activate,
    Step.PROVISION: provision,
    Step.COMPLETE: complete,
}


def record_failure(
    order_id: str,
    run: int,
    error: dict[str, Any],
    step: str | None,
    ports: Ports,
    *,
    write_salesforce: bool = True,
) -> None:
    """Mark the order Failed in Salesforce with the reason, then announce it.

    Salesforce is written first so that it and the stream agree; when Salesforce cannot be
    written (the order does not exist there, or it stayed down through every retry) the
    failure is still announced, with the status left as last written. A failure of an older
    run, or of an order already finished, does nothing.
    """
    state = ports.events.current_state(order_id)
    if state is not None and (state.get("run") != run or is_terminal(state.get("stage"))):
        return
    update: dict[str, Any] = {
        "stage": Stage.FAILED,
        "message": f"Fulfillment failed: {error['message']}",
        "error": error,
    }
    if step is not None:
        ports.ledger.save_failed_step(order_id, step)  # where an operator retry resumes
        update["step"] = step
    if write_salesforce and _write_failure(order_id, error, ports):
        update["status"] = "Failed"
    if announce(order_id, update, ports.events):
        ORDERS.labels("failed").inc()
        extra = {"order_id": order_id, "outcome": "failed", "code": error["code"], "run": run}
        log.warning("order failed: %s", error["message"], extra=extra)


def _write_failure(order_id: str, error: dict[str, Any], ports: Ports) -> bool:
    try:
        reason = f"{error['code']}: {error['message']}"
        ports.salesforce.update_order(order_id, status="Failed", error=reason)
    except PermanentError as exc:
        log.warning("order %s: could not record the failure in Salesforce: %s", order_id, exc)
        return False
    return True


def ensure_current(job: Job, ports: Ports) -> None:
    """Raise StaleMessage unless `job` belongs to the order's current run and epoch."""
    state = ports.events.current_state(job.order_id)
    if state is None:
        return  # state lost (Redis flushed): carry on, the steps are idempotent anyway
    if state.get("run", 1) != job.run or is_terminal(state.get("stage")):
        raise StaleMessage(f"order {job.order_id}: run {job.run} is not the current run")
    if ports.recovery.epoch(job.order_id) != job.epoch:
        raise StaleMessage(f"order {job.order_id}: epoch {job.epoch} was taken over")


def announce(order_id: str, update: dict[str, Any], events: OrderEvents) -> str | None:
    """Publish `update` unless the order already passed that stage (a repeated step)."""
    try:
        return events.publish(order_id, update)
    except IllegalTransition as exc:
        log.info("order %s: not announcing %s (%s)", order_id, update["stage"], exc)
        return None
