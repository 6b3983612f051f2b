"""The fulfillment steps as plain functions: no Celery here.

Each step may run more than once (retries, redelivery after a crash, a duplicate message), so
each one is idempotent by the Salesforce Order id: it checks what already happened before
acting, announces its stage only if the order has not passed it, and never creates a second
WHMCS order (the ledger, then WHMCS itself, are asked first, under a per-order lease).

`run` is the order's fulfillment run (1, then +1 for every operator retry) and `epoch` counts
the reconciler's takeovers. A message from an older run or epoch, or for an order already in
a terminal state, is stale and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from integrations import IntegrationError, OrderRecord, PermanentError, WhmcsOrder
from notifier import IllegalTransition, Stage, current_state, is_terminal, owners, publish
from notifier.order_ids import normalize_salesforce_id

from . import gateways, leases, ledger
from .crashpoints import crashpoint
from .metrics import ORDERS

log = logging.getLogger(__name__)


class StaleMessage(Exception):
    """Raised when a step belongs to an older run or epoch, or the order already finished."""


@dataclass(frozen=True)
class Job:
    """One execution of a step: which order, run and epoch it serves, which try it is."""

    order_id: str
    run: int
    epoch: int = 0
    attempt: int = 1
    #: First step of an operator retry that skips activation: re-mark Activating first.
    reopen: bool = False


def activate(job: Job) -> None:
    """Mark the order Activating in Salesforce and learn what to provision."""
    ensure_current(job)
    order, _ = _load_context(job.order_id)
    status = order.activation_status
    if status != "Completed":  # never move Salesforce back from a finished activation
        gateways.salesforce().update_order(job.order_id, status="Activating")
        status = "Activating"
    crashpoint("after-activate-write")
    announce(
        job.order_id,
        {
            "stage": Stage.ACTIVATING,
            "status": status,
            "message": "Order marked Activating in Salesforce",
            "attempt": job.attempt,
        },
    )


def provision(job: Job) -> None:
    """Create (once) and accept the order in WHMCS."""
    ensure_current(job)
    _reopen(job)
    announce(
        job.order_id,
        {
            "stage": Stage.PROVISIONING,
            "message": "Creating the order in WHMCS",
            "attempt": job.attempt,
        },
    )
    order = ledger.load_whmcs_order(job.order_id) or _create_whmcs_order(job.order_id)
    crashpoint("before-accept")
    gateways.whmcs().accept_order(order.order_id)
    crashpoint("after-accept")


def _create_whmcs_order(order_id: str) -> WhmcsOrder:
    context = ledger.load_context(order_id) or _load_context(order_id)[1]
    whmcs = gateways.whmcs()
    with leases.exclusive(order_id, "provision"):
        # Ask our ledger, then WHMCS itself (a lost AddOrder response leaves only the latter).
        order = ledger.load_whmcs_order(order_id) or whmcs.find_order(
            context.client_id, order_id, context.lines[0].product_id
        )
        if order is None:
            crashpoint("before-addorder")
            order = whmcs.add_order(context.client_id, context.lines, order_id)
            crashpoint("after-addorder")
        ledger.save_whmcs_order(order_id, order)
    return order


def _reopen(job: Job) -> None:
    if job.reopen:  # an operator retry starting here: Salesforce said Failed until now
        gateways.salesforce().update_order(job.order_id, status="Activating")


def _load_context(order_id: str) -> tuple[OrderRecord, ledger.OrderContext]:
    """Read the order, its WHMCS client and products from Salesforce into the ledger."""
    salesforce = gateways.salesforce()
    order = salesforce.get_order(order_id)
    account = normalize_salesforce_id(order.account_id)
    if account:  # the trigger may not have known it (Salesforce was down): streams need it
        owners.record_owner(order_id, account)
    if order.client_id is None:
        raise PermanentError(
            "WHMCS_CLIENT_MISSING",
            "the order's Account has no WHMCS client id",
            system="salesforce",
        )
    lines = tuple(salesforce.get_order_lines(order_id))
    context = ledger.OrderContext(client_id=order.client_id, lines=lines)
    ledger.save_context(order_id, context)
    return order, context


def complete(job: Job) -> None:
    """Mark the order Completed in Salesforce, with its WHMCS order id."""
    ensure_current(job)
    order_id, run, attempt = job.order_id, job.run, job.attempt
    order = ledger.load_whmcs_order(order_id)
    if order is None:
        raise PermanentError(
            "WHMCS_ORDER_UNKNOWN", "no WHMCS order was recorded for this order", system="whmcs"
        )
    gateways.salesforce().update_order(order_id, status="Completed", whmcs_order_id=order.order_id)
    crashpoint("after-complete-write")
    finished = announce(
        order_id,
        {
            "stage": Stage.COMPLETED,
            "status": "Completed",
            "message": f"Service active: WHMCS order {order.order_id}",
            "attempt": attempt,
            "whmcs": {"orderId": order.order_id, "serviceIds": list(order.service_ids)},
        },
    )
    if finished:
        ORDERS.labels("completed").inc()
        log.info(
            "order completed", extra={"order_id": order_id, "outcome": "completed", "run": run}
        )


def fail(
    order_id: str,
    run: int,
    error: dict[str, Any],
    step: str | None = None,
    *,
    write_salesforce: bool = True,
) -> None:
    """Mark the order Failed in Salesforce with the reason, then announce it.

    Salesforce is written first so that it and the stream agree; when Salesforce cannot be
    written (the order does not exist there, or it stayed down through every retry) the
    failure is still announced, with the status left as last written.
    """
    state = current_state(order_id)
    if state is not None and (state.get("run") != run or is_terminal(state.get("stage"))):
        return
    update: dict[str, Any] = {
        "stage": Stage.FAILED,
        "message": f"Fulfillment failed: {error['message']}",
        "error": error,
    }
    if step is not None:
        ledger.save_failed_step(order_id, step)  # where an operator retry resumes
        update["step"] = step
    if write_salesforce and _write_failure(order_id, error):
        update["status"] = "Failed"
    if announce(order_id, update):
        ORDERS.labels("failed").inc()
        extra = {"order_id": order_id, "outcome": "failed", "code": error["code"], "run": run}
        log.warning("order failed: %s", error["message"], extra=extra)


def _write_failure(order_id: str, error: dict[str, Any]) -> bool:
    try:
        reason = f"{error['code']}: {error['message']}"
        gateways.salesforce().update_order(order_id, status="Failed", error=reason)
    except PermanentError as exc:
        log.warning("order %s: could not record the failure in Salesforce: %s", order_id, exc)
        return False
    return True


def describe_error(exc: BaseException) -> dict[str, Any]:
    """The `error` object of a failed event; internal details stay in the logs."""
    if isinstance(exc, IntegrationError):
        return {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
    if type(exc).__name__ == "WorkerLostError":  # billiard's: the step kept killing its process
        return {
            "code": "WORKER_LOST",
            "message": "the worker running this step died",
            "retryable": True,
        }
    return {
        "code": "INTERNAL_ERROR",
        "message": "unexpected error in fulfillment",
        "retryable": True,
    }


def ensure_current(job: Job) -> None:
    """Raise StaleMessage unless `job` belongs to the order's current run and epoch."""
    state = current_state(job.order_id)
    if state is None:
        return  # state lost (Redis flushed): carry on, the steps are idempotent anyway
    if state.get("run", 1) != job.run or is_terminal(state.get("stage")):
        raise StaleMessage(f"order {job.order_id}: run {job.run} is not the current run")
    if ledger.epoch(job.order_id) != job.epoch:
        raise StaleMessage(f"order {job.order_id}: epoch {job.epoch} was taken over")


def announce(order_id: str, update: dict[str, Any]) -> str | None:
    """Publish `update` unless the order already passed that stage (a repeated step)."""
    try:
        return publish(order_id, update)
    except IllegalTransition as exc:
        log.info("order %s: not announcing %s (%s)", order_id, update["stage"], exc)
        return None
