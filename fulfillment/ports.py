"""What the steps work with, passed in: the two external systems, the ledger, the order's
events, recovery's lease, a step's bookkeeping, and the crash points. `live()` builds the
real ones for a process; `fakes.py` has in-memory ones, so the step rules are tested without
services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import settings as process_settings
from integrations import (
    OrderActivation,
    OrderLine,
    OrderRecord,
    SalesforceGateway,
    WhmcsGateway,
    WhmcsOrder,
)
from notifier import current_state, owners, publish
from settings import SalesforceConfig, Settings, WhmcsConfig

from . import bookkeeping, ledger, recovery
from .bookkeeping import StepEnd, StepStart
from .crashpoints import crashpoint
from .ledger import OrderContext
from .plan import Job, Step


class Salesforce(Protocol):
    def activate_and_read(self, order_id: str) -> OrderActivation:
        """Mark the order Activating, then read it (order, lines, summary): one API call."""

    def get_order(self, order_id: str) -> OrderRecord: ...
    def get_order_lines(self, order_id: str) -> list[OrderLine]: ...
    def update_order(
        self,
        order_id: str,
        *,
        status: str | None = None,
        error: str | None = None,
        whmcs_order_id: int | None = None,
    ) -> None: ...


class Whmcs(Protocol):
    def find_order(
        self, client_id: int, sf_order_id: str, product_id: int
    ) -> WhmcsOrder | None: ...
    def add_order(
        self, client_id: int, lines: Iterable[OrderLine], sf_order_id: str
    ) -> WhmcsOrder: ...
    def accept_order(self, order_id: int, *, pending: bool = False) -> None:
        """Accept the order; `pending`: it was created just now (no need to look first)."""


class Ledger(Protocol):
    def load_context(self, order_id: str) -> OrderContext | None: ...
    def save_context(self, order_id: str, context: OrderContext) -> None: ...
    def load_whmcs_order(self, order_id: str) -> WhmcsOrder | None: ...
    def save_whmcs_order(self, order_id: str, order: WhmcsOrder) -> None: ...
    def load_failed_step(self, order_id: str) -> str | None: ...
    def save_failed_step(self, order_id: str, step: str) -> None: ...


class OrderEvents(Protocol):
    """The order's published state: read it, publish to it (atomically refusing an illegal
    transition with `IllegalTransition`), and record who owns the order for its streams."""

    def current_state(self, order_id: str) -> dict[str, Any] | None: ...
    def publish(self, order_id: str, update: Mapping[str, Any]) -> str: ...
    def record_owner(self, order_id: str, account_id: str) -> None: ...


class ProvisioningSection(Protocol):
    """The provisioning lease held: the WHMCS order the ledger had as it was taken, and the
    one created meanwhile (`record`: written as the lease is released)."""

    @property
    def whmcs_order(self) -> WhmcsOrder | None: ...
    def record(self, order: WhmcsOrder) -> None: ...


class Recovery(Protocol):
    def provisioning(self, order_id: str) -> AbstractContextManager[ProvisioningSection]:
        """The order's provisioning lease, for the block (TransientError if it stays held)."""


class Books(Protocol):
    """A step's bookkeeping (`bookkeeping.py`): one call as it begins, one as it ends."""

    def begin(self, job: Job) -> StepStart: ...
    def announce(self, job: Job, start: StepStart, update: Mapping[str, Any]) -> str: ...
    def finish(self, job: Job, start: StepStart, end: StepEnd) -> str | None: ...


@dataclass(frozen=True)
class QueuedRun:
    """A run whose claim is published, to be queued: its chain from `point`, for one epoch."""

    order_id: str
    run: int
    epoch: int
    point: recovery.ResumePoint
    #: The trigger's task id (the order's `taskId`), given to the chain.
    task_id: str

    def as_message(self) -> dict[str, Any]:
        step, reopen = self.point.step.value, self.point.reopen
        return {"order_id": self.order_id, "run": self.run, "epoch": self.epoch,
                "step": step, "reopen": reopen, "task_id": self.task_id}  # fmt: skip

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> QueuedRun:
        point = recovery.ResumePoint(Step(message["step"]), bool(message["reopen"]))
        return cls(str(message["order_id"]), int(message["run"]), int(message["epoch"]), point,
                   str(message["task_id"]))  # fmt: skip


class Dispatcher(Protocol):
    """Queues a run's chain of steps (the Celery edge implements it)."""

    def start(self, order_id: str, run: int, epoch: int, point: recovery.ResumePoint,
              task_id: str | None = None) -> None: ...  # fmt: skip
    def start_many(self, runs: Sequence[QueuedRun]) -> None:
        """Queue many runs at once: one message for all of them, which a worker turns into
        their chains, so the caller (the listener, one process) pays one send, not one per
        order."""

    def fail(self, order_id: str, run: int, error: dict[str, Any], step: str | None) -> None: ...


@dataclass(frozen=True)
class Ports:
    salesforce: Salesforce
    whmcs: Whmcs
    ledger: Ledger
    events: OrderEvents
    recovery: Recovery
    books: Books
    #: A test-only crash point: `crashpoint(name)` may kill the process there.
    crashpoint: Callable[[str], None]


# -- the real ones ------------------------------------------------------------------------------


class RedisLedger:
    load_context = staticmethod(ledger.load_context)
    save_context = staticmethod(ledger.save_context)
    load_whmcs_order = staticmethod(ledger.load_whmcs_order)
    save_whmcs_order = staticmethod(ledger.save_whmcs_order)
    load_failed_step = staticmethod(ledger.load_failed_step)
    save_failed_step = staticmethod(ledger.save_failed_step)


class RedisEvents:
    current_state = staticmethod(current_state)
    publish = staticmethod(publish)

    @staticmethod
    def record_owner(order_id: str, account_id: str) -> None:
        owners.record_owner(order_id, account_id)


@dataclass(frozen=True)
class RedisRecovery:
    lease_seconds: float

    @contextmanager
    def provisioning(self, order_id: str) -> Iterator[ProvisioningSection]:
        field = ledger.WHMCS_ORDER
        with recovery.exclusive(order_id, "provision", self.lease_seconds, field) as section:
            yield _LedgerSection(section)


@dataclass(frozen=True)
class _LedgerSection:
    section: recovery.Section

    @property
    def whmcs_order(self) -> WhmcsOrder | None:
        return ledger.decode_whmcs_order(self.section.value)

    def record(self, order: WhmcsOrder) -> None:
        self.section.write(ledger.encode_whmcs_order(order))


@dataclass(frozen=True)
class RedisBooks:
    #: How long a running step's alive mark lasts (renewed), and a waiting next step's.
    alive_seconds: float
    waiting_seconds: float

    def begin(self, job: Job) -> StepStart:
        return bookkeeping.begin(job, self.alive_seconds)

    def announce(self, job: Job, start: StepStart, update: Mapping[str, Any]) -> str:
        return bookkeeping.announce(job, start, update)

    def finish(self, job: Job, start: StepStart, end: StepEnd) -> str | None:
        return bookkeeping.finish(job, start, end, self.waiting_seconds)


def live(settings: Settings | None = None) -> Ports:
    """This process's real collaborators (one pooled gateway per system and settings)."""
    settings = settings or process_settings.current()
    return Ports(
        salesforce=salesforce_gateway(settings.salesforce),
        whmcs=whmcs_gateway(settings.whmcs),
        ledger=RedisLedger(),
        events=RedisEvents(),
        recovery=RedisRecovery(settings.recovery.alive_seconds),
        books=RedisBooks(settings.recovery.alive_seconds, settings.recovery.stuck_after_seconds),
        crashpoint=crashpoint,
    )


@cache
def salesforce_gateway(config: SalesforceConfig) -> SalesforceGateway:
    """Created on first use (after a prefork worker forks), then shared by the process."""
    return SalesforceGateway(config)


@cache
def whmcs_gateway(config: WhmcsConfig) -> WhmcsGateway:
    return WhmcsGateway(config)
