"""The shared in-memory world both emulators read and write.

One process serves both emulators, so a demo order created on the Salesforce side can carry a
WHMCS client id that the WHMCS side knows. Records are plain JSON-able dicts, so saving is a
`json.dumps` away (`persistence.py`). Every access goes through `World.lock`; writers call
`World.changed()` so the saver knows there is something new to write.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


@dataclass
class SalesforceData:
    """Salesforce records by 18-character id, plus each Order's write log."""

    accounts: dict[str, Record] = field(default_factory=dict)
    products: dict[str, Record] = field(default_factory=dict)
    orders: dict[str, Record] = field(default_factory=dict)
    order_items: dict[str, Record] = field(default_factory=dict)
    writes: dict[str, list[Record]] = field(default_factory=dict)
    next_order_number: int = 100
    api_usage: int = 0

    def table(self, sobject: str) -> dict[str, Record]:
        """The records of one sObject type (`Account`, `Product2`, `Order`, `OrderItem`)."""
        tables = {
            "Account": self.accounts,
            "Product2": self.products,
            "Order": self.orders,
            "OrderItem": self.order_items,
        }
        return tables[sobject]


@dataclass
class WhmcsData:
    """WHMCS clients, products, orders and services by integer id."""

    clients: dict[int, Record] = field(default_factory=dict)
    products: dict[int, Record] = field(default_factory=dict)
    orders: dict[int, Record] = field(default_factory=dict)
    services: dict[int, Record] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def next_id(self, kind: str) -> int:
        """The next auto-increment id of a table (`client`, `order`, `service`, `invoice`)."""
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return self.counters[kind]


class World:
    """Both systems' data behind one re-entrant lock."""

    def __init__(
        self, salesforce: SalesforceData | None = None, whmcs: WhmcsData | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.salesforce = salesforce or SalesforceData()
        self.whmcs = whmcs or WhmcsData()
        # A counter rather than a dirty flag: a change that lands while a snapshot is being
        # written bumps it again, so the saver cannot mistake it for already saved.
        self.version = 0

    def changed(self) -> None:
        """Note that the data changed (call with the lock held)."""
        self.version += 1

    def to_json(self) -> dict[str, Any]:
        """The data as JSON-able dicts: the live tables, not a copy, so serialize it with
        the lock held. (A deep copy first, `dataclasses.asdict`, held the lock ten times as
        long: every call to the emulators waited up to a third of a second each save.)"""
        return {"salesforce": vars(self.salesforce), "whmcs": vars(self.whmcs)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> World:
        """Rebuild a world from `to_json()` output (JSON turned WHMCS's int keys into str)."""
        salesforce = SalesforceData(**data.get("salesforce", {}))
        raw = data.get("whmcs", {})
        whmcs = WhmcsData(
            clients=_int_keys(raw.get("clients", {})),
            products=_int_keys(raw.get("products", {})),
            orders=_int_keys(raw.get("orders", {})),
            services=_int_keys(raw.get("services", {})),
            counters=dict(raw.get("counters", {})),
        )
        return cls(salesforce, whmcs)


def _int_keys(table: dict[str, Record]) -> dict[int, Record]:
    return {int(key): record for key, record in table.items()}
