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
from collections.abc import Callable, Mapping
from typing import Any

from integrations import OrderLine, OrderRecord, OrderSummary, PermanentError, WhmcsOrder
from notifier import IllegalTransition, Stage, is_terminal
from notifier.order_ids import normalize_salesforce_id

from .bookkeeping import Owner, StepEnd, StepStart
from .ledger import OrderContext
from .metrics import ORDERS
from .plan import Job, Step
from .ports import OrderEvents, Ports

log = logging.getLogger(__name__)


class StaleMessage(Exception):
    """Raised when a step belongs to an older run or epoch, or the order already finished."""


def activate(job: Job, ports: Ports) -> None:
    """Mark the order Activating in Salesforce and learn what to provision: one call that
    writes and then reads (so what is provisioned is the order as approved, never as a page
    saw it earlier)."""
    start = ports.books.begin(job)
    ensure_current(job, start)
    if start.context is not None:  # activated before (saved with the announcement): redelivery
        _finish(job, start, ports, StepEnd(_activating(job, "Activating")))
        return
    if start.state is None:  # state lost (Redis flushed): read first, never move back
        order, lines, summary = _read_order(job.order_id, ports)
    else:
        activation = ports.salesforce.activate_and_read(job.order_id)
        order, lines, summary = activation.order, activation.lines, activation.summary
    status = order.activation_status
    if status != "Completed" and start.state is None:
        ports.salesforce.update_order(job.order_id, status="Activating")
        status = "Activating"
    ports.crashpoint("after-activate-write")
    context = _context(order, lines)
    account = normalize_salesforce_id(order.account_id)
    # The trigger may not have known the owner (Salesforce was down): streams need it.
    owner = Owner(account, summary.as_json() if summary else None) if account else None
    _finish(job, start, ports, StepEnd(_activating(job, status), context, owner))


def _activating(job: Job, status: str | None) -> dict[str, Any]:
    return {
        "stage": Stage.ACTIVATING,
        "status": status,
        "message": "Order marked Activating in Salesforce",
        "attempt": job.attempt,
    }


def provision(job: Job, ports: Ports) -> None:
    """Create (once) and accept the order in WHMCS."""
    start = ports.books.begin(job)
    ensure_current(job, start)
    if job.reopen:  # an operator retry starting here: Salesforce said Failed until now
        ports.salesforce.update_order(job.order_id, status="Activating")
    update = {
        "stage": Stage.PROVISIONING,
        "message": "Creating the order in WHMCS",
        "attempt": job.attempt,
    }
    # The first announcement of provisioning in the first run: no AddOrder was ever sent for
    # this order (each is sent after it), so WHMCS need not be asked whether one was.
    first = _announce_on(job, start, update, ports) is not None and job.run == 1
    order, created = start.whmcs_order, False
    if order is None:
        order, created = _create_whmcs_order(job.order_id, start, ports, ask_whmcs=not first)
    ports.crashpoint("before-accept")
    ports.whmcs.accept_order(order.order_id, pending=created)
    ports.crashpoint("after-accept")
    _finish(job, start, ports, StepEnd(None))


def _create_whmcs_order(
    order_id: str, start: StepStart, ports: Ports, *, ask_whmcs: bool
) -> tuple[WhmcsOrder, bool]:
    """The order's WHMCS order, created unless the ledger (or, when asked, WHMCS) has one;
    and whether it was created now."""
    context = start.context or _read_context(order_id, ports)
    with ports.recovery.provisioning(order_id) as section:
        # Asked again inside the lease: another worker may have just created it. A lost
        # AddOrder response leaves it in WHMCS only.
        if section.whmcs_order is not None:
            return section.whmcs_order, False
        if ask_whmcs:
            product = context.lines[0].product_id
            found = ports.whmcs.find_order(context.client_id, order_id, product)
            if found is not None:
                section.record(found)
                return found, False
        ports.crashpoint("before-addorder")
        order = ports.whmcs.add_order(context.client_id, context.lines, order_id)
        section.record(order)  # written as the lease is released, even if what follows dies
        ports.crashpoint("after-addorder")
    return order, True


def _read_order(
    order_id: str, ports: Ports
) -> tuple[OrderRecord, tuple[OrderLine, ...], OrderSummary | None]:
    """The order, read without writing (when nothing says activation is safe to write)."""
    order = ports.salesforce.get_order(order_id)
    return order, tuple(ports.salesforce.get_order_lines(order_id)), None


def _read_context(order_id: str, ports: Ports) -> OrderContext:
    """What provisioning needs, when the ledger lost it: read again and saved."""
    order, lines, _ = _read_order(order_id, ports)
    context = _context(order, lines)
    ports.ledger.save_context(order_id, context)
    return context


def _context(order: OrderRecord, lines: tuple[OrderLine, ...]) -> OrderContext:
    if order.client_id is None:
        raise PermanentError(
            "WHMCS_CLIENT_MISSING",
            "the order's Account has no WHMCS client id",
            system="salesforce",
        )
    return OrderContext(client_id=order.client_id, lines=lines)


def complete(job: Job, ports: Ports) -> None:
    """Mark the order Completed in Salesforce, with its WHMCS order id."""
    start = ports.books.begin(job)
    ensure_current(job, start)
    order = start.whmcs_order
    if order is None:
        raise PermanentError(
            "WHMCS_ORDER_UNKNOWN", "no WHMCS order was recorded for this order", system="whmcs"
        )
    ports.salesforce.update_order(job.order_id, status="Completed", whmcs_order_id=order.order_id)
    ports.crashpoint("after-complete-write")
    update = {
        "stage": Stage.COMPLETED,
        "status": "Completed",
        "message": f"Service active: WHMCS order {order.order_id}",
        "attempt": job.attempt,
        "whmcs": {"orderId": order.order_id, "serviceIds": list(order.service_ids)},
    }
    if _finish(job, start, ports, StepEnd(update, last=True)):
        ORDERS.labels("completed").inc()
        log.info(
            "order completed",
            extra={"order_id": job.order_id, "outcome": "completed", "run": job.run},
        )


def _finish(job: Job, start: StepStart, ports: Ports, end: StepEnd) -> str | None:
    """End the step (its bookkeeping and update in one call); the update's event id, or None
    when the order had passed that stage already (a repeated step)."""
    try:
        return ports.books.finish(job, start, end)
    except IllegalTransition as exc:
        _not_announced(job.order_id, end.update, exc)
        return None


def _announce_on(job: Job, start: StepStart, update: dict[str, Any], ports: Ports) -> str | None:
    try:
        return ports.books.announce(job, start, update)
    except IllegalTransition as exc:
        _not_announced(job.order_id, update, exc)
        return None


def _not_announced(order_id: str, update: Mapping[str, Any] | None, exc: Exception) -> None:
    stage = update["stage"] if update else None
    log.info("order %s: not announcing %s (%s)", order_id, stage, exc)


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


def ensure_current(job: Job, start: StepStart) -> None:
    """Raise StaleMessage unless `job` belongs to the order's current run and epoch."""
    state = start.state
    if state is not None and (state.get("run", 1) != job.run or is_terminal(state.get("stage"))):
        raise StaleMessage(f"order {job.order_id}: run {job.run} is not the current run")
    if start.epoch != job.epoch:
        raise StaleMessage(f"order {job.order_id}: epoch {job.epoch} was taken over")


def announce(order_id: str, update: dict[str, Any], events: OrderEvents) -> str | None:
    """Publish `update` unless the order already passed that stage (a repeated step)."""
    try:
        return events.publish(order_id, update)
    except IllegalTransition as exc:
        _not_announced(order_id, update, exc)
        return None
