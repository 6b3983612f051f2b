"""Demo orders: a Draft Salesforce Order whose Account is linked to a WHMCS client.

This is the one operation that spans both systems, which is why the two emulators share a
world: the Account's `WHMCS_Client_Id__c` must name a client the WHMCS emulator knows.
"""

from __future__ import annotations

import secrets
from typing import Any

from . import catalogue, clock, ids, sobjects, whmcs_records
from .errors import ControlError
from .state import Record, World

# `approve` is read by the control API, which approves the order once it exists.
_BODY_FIELDS = {"accountId", "products", "description", "approve"}
DEFAULT_PRODUCTS = ("FIBRE-100",)
#: Orders one `POST /__sandbox/orders/batch` may create (benchmarks make thousands).
MAX_BATCH = 20_000


def create_order(world: World, body: Any) -> dict[str, str]:
    """Create the order described by a `POST /__sandbox/orders` body; return its ids."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise ControlError("BAD_REQUEST", "the body must be a JSON object")
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise ControlError("BAD_REQUEST", f"unknown field(s): {', '.join(unknown)}")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise ControlError("BAD_REQUEST", "description must be a string")
    if not isinstance(body.get("approve", False), bool):
        raise ControlError("BAD_REQUEST", "approve must be true or false")
    lines = _lines(body.get("products", list(DEFAULT_PRODUCTS)))
    with world.lock:
        products = _products(world, [code for code, _ in lines])
        account = _account(world, body.get("accountId"))
        order = _order(world, account["Id"], description)
        for (_, quantity), product in zip(lines, products, strict=True):
            _order_item(world, order["Id"], product, quantity)
        world.changed()
        return {
            "orderId": order["Id"],
            "accountId": account["Id"],
            "orderNumber": order["OrderNumber"],
        }


def create_orders(world: World, body: Any) -> list[dict[str, str]]:
    """`POST /__sandbox/orders/batch`: `count` orders, each as `create_order` would make it
    from the rest of the body (without `accountId`, each order gets an account of its own)."""
    if not isinstance(body, dict):
        raise ControlError("BAD_REQUEST", "the body must be a JSON object")
    rest = dict(body)
    count = rest.pop("count", None)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= MAX_BATCH:
        raise ControlError("BAD_REQUEST", f"count must be an integer from 1 to {MAX_BATCH}")
    return [create_order(world, rest) for _ in range(count)]


def _lines(products: Any) -> list[tuple[str, int]]:
    if not isinstance(products, list) or not products:
        raise ControlError("BAD_REQUEST", "products must be a non-empty list")
    lines: list[tuple[str, int]] = []
    for entry in products:
        code, quantity = (entry, 1) if isinstance(entry, str) else _line(entry)
        lines.append((code, quantity))
    return lines


def _line(entry: Any) -> tuple[str, int]:
    if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
        raise ControlError("BAD_REQUEST", 'each product is a code or {"code", "quantity"}')
    quantity = entry.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ControlError("BAD_REQUEST", "quantity must be a positive integer")
    return entry["code"], quantity


def _products(world: World, codes: list[str]) -> list[Record]:
    by_code = {p["ProductCode"].upper(): p for p in world.salesforce.products.values()}
    missing = [code for code in codes if code.upper() not in by_code]
    if missing:
        known = ", ".join(sorted(by_code))
        raise ControlError("UNKNOWN_PRODUCT", f"unknown product code(s) {missing}; known: {known}")
    return [by_code[code.upper()] for code in codes]


def _account(world: World, account_id: Any) -> Record:
    accounts = world.salesforce.accounts
    if account_id is None:
        account = sobjects.new_record("Account", {})
    elif not ids.is_id_of(account_id, "Account"):
        raise ControlError("MALFORMED_ID", f"accountId is not an Account id: {account_id!r}")
    else:
        full = ids.normalize(account_id) or ""
        account = accounts.get(full) or sobjects.new_record("Account", {"Id": full})
    accounts[account["Id"]] = account
    _link_client(world, account)
    return account


def _link_client(world: World, account: Record) -> None:
    """Give the Account a WHMCS client unless it already points at one that exists."""
    linked = account.get("WHMCS_Client_Id__c")
    if linked and linked.isdigit() and int(linked) in world.whmcs.clients:
        return
    tag = secrets.token_hex(3)
    client = whmcs_records.new_client(
        world.whmcs,
        firstname="Sandbox",
        lastname=f"Customer {tag}",
        email=f"customer-{tag}@sandbox.example",
        notes=f"sf-account:{account['Id']}",
    )
    changes = {"WHMCS_Client_Id__c": str(client["id"])}
    if not account.get("Name"):
        changes["Name"] = f"Sandbox Customer {tag}"
    sobjects.apply_changes(account, changes)


def _order(world: World, account_id: str, description: str | None) -> Record:
    data = world.salesforce
    number = f"{data.next_order_number:08d}"
    data.next_order_number += 1
    order = sobjects.new_record(
        "Order",
        {
            "OrderNumber": number,
            "AccountId": account_id,
            "Status": "Draft",
            "StatusCode": "Draft",
            "EffectiveDate": clock.salesforce_date(),
            "Description": description,
        },
    )
    data.orders[order["Id"]] = order
    data.writes[order["Id"]] = []
    return order


def _order_item(world: World, order_id: str, product: Record, quantity: int) -> None:
    pid = int(product["WHMCS_Product_Id__c"])
    item = sobjects.new_record(
        "OrderItem",
        {
            "OrderId": order_id,
            "Product2Id": product["Id"],
            "Quantity": float(quantity),
            "UnitPrice": catalogue.price_of(world, pid),
        },
    )
    world.salesforce.insert("OrderItem", item)
