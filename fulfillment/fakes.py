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

from integrations import OrderLine, OrderRecord, PermanentError, WhmcsOrder
from notifier.events import build_payload, check_transition, next_progress

from .ledger import OrderContext
from .ports import Ports, QueuedRun
from .recovery import ResumePoint


class FakeSalesforce:
    """Orders by id; `updates` lists every write, in order; `fail_next` makes the next call
    raise the given error (a transient outage, say)."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[str, dict[str, Any]]] = []
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
        self.fail_next: list[Exception] = []

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def find_order(self, client_id: int, sf_order_id: str, product_id: int) -> WhmcsOrder | None:
        self._maybe_fail()
        return next((order for sf_id, order in self.orders if sf_id == sf_order_id), None)

    def add_order(self, client_id: int, lines: Iterable[OrderLine], sf_order_id: str) -> WhmcsOrder:
        self._maybe_fail()
        number = 100 + len(self.orders)
        order = WhmcsOrder(order_id=number, service_ids=tuple(number * 10 + i for i, _ in
                                                              enumerate(lines)))  # fmt: skip
        self.orders.append((sf_order_id, order))
        return order

    def accept_order(self, order_id: int) -> None:
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
    #: Purposes held right now, per order (the lease's critical section).
    held: set[tuple[str, str]] = field(default_factory=set)

    def epoch(self, order_id: str) -> int:
        return self.epochs.get(order_id, 0)

    @contextmanager
    def exclusive(self, order_id: str, purpose: str) -> Iterator[None]:
        if (order_id, purpose) in self.held:
            raise AssertionError(f"{purpose} of {order_id} entered twice at once")
        self.held.add((order_id, purpose))
        try:
            yield
        finally:
            self.held.discard((order_id, purpose))


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


def fake_ports() -> FakePorts:
    return FakePorts(
        salesforce=FakeSalesforce(),
        whmcs=FakeWhmcs(),
        ledger=MemoryLedger(),
        events=MemoryEvents(),
        recovery=MemoryRecovery(),
        crashpoint=lambda _point: None,
    )
