"""Plain values the gateways return: what fulfillment needs to know, vendor shapes left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OrderRecord:
    """The Salesforce Order fields fulfillment reads, with its Account's WHMCS client id."""

    order_id: str
    account_id: str | None
    client_id: int | None
    activation_status: str | None


@dataclass(frozen=True)
class OrderLine:
    """One order product, as WHMCS knows it."""

    product_id: int
    quantity: int
    name: str


@dataclass(frozen=True)
class WhmcsOrder:
    """A WHMCS order and the services it created."""

    order_id: int
    service_ids: tuple[int, ...]


@dataclass(frozen=True)
class OrderSummary:
    """What the customer ordered, as Salesforce shows it: for the order's page and list."""

    #: The order number Salesforce shows (`OrderNumber`), not the record id.
    number: str | None
    #: When it was placed (`EffectiveDate`, an ISO date).
    placed: str | None
    #: Sum of quantity times unit price over the items (the Order's `TotalAmount`).
    total: float | None
    #: (product name, quantity), in the order's item order.
    items: tuple[tuple[str, int], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "placed": self.placed,
            "total": self.total,
            "items": [{"name": name, "quantity": quantity} for name, quantity in self.items],
        }


@dataclass(frozen=True)
class OrderFacts:
    """One read of an order: who owns it, and what was ordered."""

    account_id: str | None
    summary: OrderSummary


@dataclass(frozen=True)
class OrderActivation:
    """An order just marked Activating, as read back in the same call: its activation
    fields, what to provision, and what the customer sees."""

    #: Read after the write: its `activation_status` is the one just written.
    order: OrderRecord
    #: The products as WHMCS knows them, in the order's item order (never empty).
    lines: tuple[OrderLine, ...]
    summary: OrderSummary

    @property
    def facts(self) -> OrderFacts:
        """The owner and the summary, as a lookup of the order would have them."""
        return OrderFacts(self.order.account_id, self.summary)
