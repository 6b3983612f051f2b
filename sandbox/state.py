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
    #: OrderItem ids by their OrderId, as Salesforce's index on the reference finds them for a
    #: subquery (a scan of the whole item table per query grew with every order a benchmark
    #: made, and made the emulator, not the client, the cost). Derived: never saved. An entry
    #: is a candidate: `items_of` checks the item's OrderId as it reads.
    _items_by_order: dict[str, dict[str, None]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for item in self.order_items.values():
            self.index("OrderItem", item)

    def insert(self, sobject: str, record: Record) -> None:
        """Add a new record to its table."""
        self.table(sobject)[record["Id"]] = record
        self.index(sobject, record)

    def remove(self, sobject: str, record_id: str) -> None:
        self.table(sobject).pop(record_id, None)

    def index(self, sobject: str, record: Record) -> None:
        """Note where a record created or changed now belongs (items: under their order)."""
        if sobject == "OrderItem" and record.get("OrderId"):
            self._items_by_order.setdefault(record["OrderId"], {})[record["Id"]] = None

    def items_of(self, order_id: str) -> list[Record]:
        """The order's items, in the order they were added."""
        found = (self.order_items.get(i) for i in self._items_by_order.get(order_id, ()))
        return [item for item in found if item is not None and item["OrderId"] == order_id]

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
        salesforce = {k: v for k, v in vars(self.salesforce).items() if not k.startswith("_")}
        return {"salesforce": salesforce, "whmcs": vars(self.whmcs)}

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
