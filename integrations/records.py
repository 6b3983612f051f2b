"""Plain values the gateways return: what fulfillment needs to know, vendor shapes left out."""

from __future__ import annotations

from dataclasses import dataclass


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
