"""In-memory collaborators for the steps (as dramatiq ships a stub broker): Salesforce and
WHMCS that remember what was done to them, a ledger, the order's events under the same
lifecycle rules as the real publisher (`notifier.events`), recovery without Redis, and a
dispatcher that records what it was asked to queue.

`fake_ports()` wires them together, so a step rule is tested with no services:

    ports = fake_ports()
    ports.salesforce.add(order_id, account_id="001...", client_id=7, lines=[...])
    steps.activate(Job(order_id, run=1), ports)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from integrations import (
    OrderActivation,
    OrderLine,
    OrderRecord,
    OrderSummary,
    PermanentError,
    TransientError,
    WhmcsOrder,
)
from notifier.events import build_payload, check_transition, next_progress
from notifier.publish import OrderRead

from .bookkeeping import StepEnd, StepStart
from .ledger import OrderContext
from .plan import Job
from .ports import Ports, QueuedRun
from .recovery import ResumePoint


class FakeSalesforce:
    """Orders by id; `updates` lists every write, in order; `fail_next` makes the next call
    raise the given error (a transient outage, say)."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[str, dict[str, Any]]] = []
        #: Orders read by `activate_and_read`.
        self.reads: list[str] = []
        self.fail_next: list[Exception] = []

    def add(
        self,
        order_id: str,
        *,
        account_id: str | None = "001000000000001AAA",
        client_id: int | None = 1,
        lines: Iterable[OrderLine] = (OrderLine(product_id=1, quantity=1, name="Fibre"),),
        status: str | None = None,
    ) -> None:
        self.orders[order_id] = {
            "account_id": account_id,
            "client_id": client_id,
            "lines": list(lines),
            "status": status,
        }

    def _order(self, order_id: str) -> dict[str, Any]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        try:
            return self.orders[order_id]
        except KeyError:
            raise PermanentError(
                "SALESFORCE_NOT_FOUND", "no such order", system="salesforce"
            ) from None

    def get_order(self, order_id: str) -> OrderRecord:
        order = self._order(order_id)
        return OrderRecord(order_id, order["account_id"], order["client_id"], order["status"])

    def activate_and_read(self, order_id: str) -> OrderActivation:
        """One call, as the real composite is: `updates` shows the write, `reads` the read."""
        self.update_order(order_id, status="Activating")
        self.reads.append(order_id)
        order = self.orders[order_id]
        items = tuple((line.name, line.quantity) for line in order["lines"])
        summary = OrderSummary(number=None, placed=None, total=None, items=items)
        return OrderActivation(self.get_order(order_id), tuple(order["lines"]), summary)

    def get_order_lines(self, order_id: str) -> list[OrderLine]:
        return list(self._order(order_id)["lines"])

    def update_order(
        self,
        order_id: str,
        *,
        status: str | None = None,
        error: str | None = None,
        whmcs_order_id: int | None = None,
    ) -> None:
        order = self._order(order_id)
        change = {"status": status, "error": error, "whmcs_order_id": whmcs_order_id}
        self.updates.append((order_id, {k: v for k, v in change.items() if v is not None}))
        if status is not None:
            order["status"] = status


class FakeWhmcs:
    """WHMCS orders as created; `accepted` lists the orders accepted."""

    def __init__(self) -> None:
        self.orders: list[tuple[str, WhmcsOrder]] = []
        self.accepted: list[int] = []
        #: How many times `find_order` was asked.
        self.lookups = 0
        #: The next AddOrder creates the order, then its answer is lost (a timeout).
        self.lose_next_answer = False
        self.fail_next: list[Exception] = []

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def find_order(self, client_id: int, sf_order_id: str, product_id: int) -> WhmcsOrder | None:
        self._maybe_fail()
        self.lookups += 1
        return next((order for sf_id, order in self.orders if sf_id == sf_order_id), None)

    def add_order(self, client_id: int, lines: Iterable[OrderLine], sf_order_id: str) -> WhmcsOrder:
        self._maybe_fail()
        number = 100 + len(self.orders)
        order = WhmcsOrder(order_id=number, service_ids=tuple(number * 10 + i for i, _ in
                                                              enumerate(lines)))  # fmt: skip
        self.orders.append((sf_order_id, order))
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise TransientError("WHMCS_UNAVAILABLE", "the answer was lost", system="whmcs")
        return order

    def accept_order(self, order_id: int, *, pending: bool = False) -> None:
        self._maybe_fail()
        self.accepted.append(order_id)


@dataclass
class MemoryLedger:
    contexts: dict[str, OrderContext] = field(default_factory=dict)
    whmcs_orders: dict[str, WhmcsOrder] = field(default_factory=dict)
    failed_steps: dict[str, str] = field(default_factory=dict)

    def load_context(self, order_id: str) -> OrderContext | None:
        return self.contexts.get(order_id)

    def save_context(self, order_id: str, context: OrderContext) -> None:
        self.contexts[order_id] = context

    def load_whmcs_order(self, order_id: str) -> WhmcsOrder | None:
        return self.whmcs_orders.get(order_id)

    def save_whmcs_order(self, order_id: str, order: WhmcsOrder) -> None:
        self.whmcs_orders[order_id] = order

    def load_failed_step(self, order_id: str) -> str | None:
        return self.failed_steps.get(order_id)

    def save_failed_step(self, order_id: str, step: str) -> None:
        self.failed_steps[order_id] = step


class MemoryEvents:
    """Each order's published payloads, under the publisher's own transition rules."""

    def __init__(self) -> None:
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.progress: dict[str, str] = {}
        self.owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def current_state(self, order_id: str) -> dict[str, Any] | None:
        events = self.history.get(order_id)
        return dict(events[-1]) if events else None

    def publish(self, order_id: str, update: Mapping[str, Any]) -> str:
        with self._lock:
            current = self.current_state(order_id)
            progress = self.progress.get(order_id)
            check_transition(order_id, current, progress, update)
            payload = build_payload(order_id, update, current)
            self.history.setdefault(order_id, []).append(payload)
            self.progress[order_id] = next_progress(progress, update)
            return f"{len(self.history[order_id])}-0"

    def record_owner(self, order_id: str, account_id: str) -> None:
        self.owners[order_id] = account_id

    def stages(self, order_id: str) -> list[str]:
        return [payload["stage"] for payload in self.history.get(order_id, [])]


@dataclass
class MemoryRecovery:
    epochs: dict[str, int] = field(default_factory=dict)
    #: Orders whose provisioning lease is held right now.
    held: set[str] = field(default_factory=set)
    #: The ledger the lease reads and writes.
    ledger: MemoryLedger = field(default_factory=MemoryLedger)

    def epoch(self, order_id: str) -> int:
        return self.epochs.get(order_id, 0)

    @contextmanager
    def provisioning(self, order_id: str) -> Iterator[_MemorySection]:
        if order_id in self.held:
            raise AssertionError(f"provisioning of {order_id} entered twice at once")
        self.held.add(order_id)
        section = _MemorySection(self.ledger.load_whmcs_order(order_id))
        try:
            yield section
        finally:
            if section.recorded is not None:
                self.ledger.save_whmcs_order(order_id, section.recorded)
            self.held.discard(order_id)


@dataclass
class _MemorySection:
    whmcs_order: WhmcsOrder | None
    recorded: WhmcsOrder | None = None

    def record(self, order: WhmcsOrder) -> None:
        self.recorded = order


@dataclass
class MemoryBooks:
    """A step's bookkeeping over the other fakes: what `begin` reads, `finish` writes."""

    events: MemoryEvents
    ledger: MemoryLedger
    recovery: MemoryRecovery

    def begin(self, job: Job) -> StepStart:
        oid = job.order_id
        history = self.events.history.get(oid, [])
        current = dict(history[-1]) if history else None
        read = OrderRead(len(history), current, self.events.progress.get(oid), None,
                         self.events.owners.get(oid))  # fmt: skip
        return StepStart(
            read=read,
            epoch=self.recovery.epoch(oid),
            context=self.ledger.load_context(oid),
            whmcs_order=self.ledger.load_whmcs_order(oid),
            failed_step=self.ledger.load_failed_step(oid),
        )

    def announce(self, job: Job, start: StepStart, update: Mapping[str, Any]) -> str:
        return self.events.publish(job.order_id, update)

    def finish(self, job: Job, start: StepStart, end: StepEnd) -> str | None:
        if end.context is not None:
            self.ledger.save_context(job.order_id, end.context)
        if end.owner is not None:
            self.events.record_owner(job.order_id, end.owner.account_id)
        return self.events.publish(job.order_id, end.update) if end.update is not None else None


@dataclass
class RecordingDispatcher:
    """A `Dispatcher` that queues nothing and remembers what it was asked to queue."""

    started: list[tuple[str, int, int, ResumePoint, str | None]] = field(default_factory=list)
    failed: list[tuple[str, int, dict[str, Any], str | None]] = field(default_factory=list)
    #: How many `start_many` calls (each one message on Celery).
    batches: int = 0

    def start(
        self, order_id: str, run: int, epoch: int, point: ResumePoint, task_id: str | None = None
    ) -> None:
        self.started.append((order_id, run, epoch, point, task_id))

    def start_many(self, runs: Sequence[QueuedRun]) -> None:
        self.batches += 1
        for run in runs:
            self.start(run.order_id, run.run, run.epoch, run.point, run.task_id)

    def fail(self, order_id: str, run: int, error: dict[str, Any], step: str | None) -> None:
        self.failed.append((order_id, run, error, step))


@dataclass(frozen=True)
class FakePorts(Ports):
    """`Ports` whose parts are the fakes (typed as such, for tests to inspect)."""

    salesforce: FakeSalesforce
    whmcs: FakeWhmcs
    ledger: MemoryLedger
    events: MemoryEvents
    recovery: MemoryRecovery
    books: MemoryBooks


def fake_ports() -> FakePorts:
    ledger, events = MemoryLedger(), MemoryEvents()
    recovery = MemoryRecovery(ledger=ledger)
    return FakePorts(
        salesforce=FakeSalesforce(),
        whmcs=FakeWhmcs(),
        ledger=ledger,
        events=events,
        recovery=recovery,
        books=MemoryBooks(events, ledger, recovery),
        crashpoint=lambda _point: None,
    )
