"""The WHMCS API actions the emulator implements, one function each.

Handlers take a `Call` (the decoded parameters and the world's WHMCS data, with the world lock
held by the caller) and return the success body, or raise `WhmcsError` with WHMCS's message.
Field names, messages and number/string typing follow the WHMCS API reference per action.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import clock, php, whmcs_records
from .errors import WhmcsError
from .state import Record, WhmcsData

log = logging.getLogger(__name__)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NOT_PENDING = "Order ID not found or Status not Pending"
_ORDER_ARRAYS = ("pid", "qty", "billingcycle", "domain", "customfields")


@dataclass
class Call:
    """One API call: its parameters, the data it works on, and any injected module failure."""

    data: WhmcsData
    params: dict[str, Any]
    remote_addr: str = ""
    module_failure: str | None = None

    def text(self, name: str, default: str = "") -> str:
        value = self.params.get(name)
        return value.strip() if isinstance(value, str) else default

    def number(self, name: str) -> int | None:
        value = self.text(name)
        return int(value) if value.isdigit() else None

    def flag(self, name: str, default: bool = False) -> bool:
        return php.truthy(self.params.get(name), default)

    def page(self) -> tuple[int, int]:
        start, size = self.number("limitstart"), self.number("limitnum")
        return start or 0, size if size else 25


Handler = Callable[[Call], dict[str, Any]]


def success(**fields: Any) -> dict[str, Any]:
    return {"result": "success", **fields}


# --- clients ---------------------------------------------------------------------------------


def get_clients_details(call: Call) -> dict[str, Any]:
    client_id, email = call.number("clientid"), call.text("email")
    if client_id is None and not email:
        raise WhmcsError("Either clientid Or email Is Required")
    if client_id is not None:
        client = call.data.clients.get(client_id)
    else:
        client = whmcs_records.find_client_by_email(call.data, email)
    if client is None:
        raise WhmcsError("Client Not Found")
    return success(userid=client["id"], client=whmcs_records.client_view(client))


def add_client(call: Call) -> dict[str, Any]:
    firstname, lastname, email = call.text("firstname"), call.text("lastname"), call.text("email")
    for value, what in (
        (firstname, "first name"),
        (lastname, "last name"),
        (email, "email address"),
    ):
        if not value:
            raise WhmcsError(f"You did not enter your {what}")
    if not _EMAIL.fullmatch(email):
        raise WhmcsError("The email address you entered was not valid")
    if whmcs_records.find_client_by_email(call.data, email):
        raise WhmcsError("A user already exists with that email address")
    optional = (
        "companyname", "address1", "address2", "city", "state", "postcode", "country",
        "phonenumber", "notes", "language",
    )  # fmt: skip
    extra = {name: call.text(name) for name in optional if call.text(name)}
    client = whmcs_records.new_client(call.data, firstname, lastname, email, **extra)
    return success(clientid=str(client["id"]))


def get_clients(call: Call) -> dict[str, Any]:
    search = call.text("search").lower()
    matches = [
        c
        for c in sorted(call.data.clients.values(), key=lambda c: c["id"])
        if not search or search in f"{c['firstname']} {c['lastname']} {c['email']}".lower()
    ]
    start, size = call.page()
    page = matches[start : start + size]
    keys = ("id", "firstname", "lastname", "email", "datecreated", "status")
    clients = [
        {key: c[key] for key in keys} | {"companyname": c.get("companyname", "")} for c in page
    ]
    return success(
        totalresults=len(matches),
        startnumber=start,
        numreturned=len(page),
        clients={"client": clients},
    )


# --- orders ----------------------------------------------------------------------------------


def add_order(call: Call) -> dict[str, Any]:
    client_id = call.number("clientid")
    if client_id is None or client_id not in call.data.clients:
        raise WhmcsError("Client ID Not Found")
    method = call.text("paymentmethod")
    if method not in whmcs_records.PAYMENT_METHODS:
        valid = ",".join(whmcs_records.PAYMENT_METHODS)
        raise WhmcsError(f"Invalid Payment Method. Valid options include {valid}")
    for name in _ORDER_ARRAYS:
        if name in call.params and not isinstance(call.params[name], list | dict):
            raise WhmcsError(f"Expecting parameter '{name}' to be an array")
    items = _cart_items(call)
    if not items:
        raise WhmcsError("No items added to cart so order cannot proceed")
    order = _store_order(call, client_id, method, items)
    body = success(
        orderid=str(order["id"]),
        serviceids=",".join(str(sid) for sid in order["serviceids"]),
        addonids="",
        domainids="",
    )
    if order["invoiceid"]:
        body["invoiceid"] = str(order["invoiceid"])
    return body


def _cart_items(call: Call) -> list[Record]:
    """One cart line per valid `pid[i]`, with the other arrays read at the same key."""
    items: list[Record] = []
    for key, raw_pid in php.entries(call.params.get("pid")):
        product = call.data.products.get(int(raw_pid)) if str(raw_pid).isdigit() else None
        if product is None:
            continue  # WHMCS drops unknown products from the cart
        qty = str(php.item(call.params.get("qty"), key, "1"))
        cycle = str(php.item(call.params.get("billingcycle"), key, "")).lower()
        if cycle not in whmcs_records.BILLING_CYCLES:
            cycle = "monthly" if product["paytype"] == "recurring" else "onetime"
        items.append(
            {
                "product": product,
                "qty": int(qty) if qty.isdigit() and int(qty) > 0 else 1,
                "billingcycle": cycle,
                "domain": str(php.item(call.params.get("domain"), key, "")),
                "customfields": _custom_values(
                    product, php.item(call.params.get("customfields"), key)
                ),
            }
        )
    return items


def _custom_values(product: Record, encoded: Any) -> dict[str, str]:
    """Decode `base64(serialize([...]))`, keeping only fields the product defines."""
    if not isinstance(encoded, str) or not encoded:
        return {}
    try:
        values = php.decode_customfields(encoded)
    except php.PhpFormatError as exc:
        # WHMCS silently ignores custom fields it cannot unserialize; say so in the log.
        log.warning("ignoring unreadable customfields %r: %s", encoded[:60], exc)
        return {}
    by_name = {f["name"].lower(): str(f["id"]) for f in product["customfields"]}
    known = set(by_name.values())
    result: dict[str, str] = {}
    for key, value in values.items():
        field_id = key if key in known else by_name.get(key.lower())
        if field_id:
            result[field_id] = value
    return result


def _store_order(call: Call, client_id: int, method: str, items: list[Record]) -> Record:
    data = call.data
    order_id = data.next_id("order")
    total = 0.0
    service_ids: list[int] = []
    for line in items:
        amount = float(line["product"]["price"]) * line["qty"]
        total += amount
        service_ids.append(_store_service(data, order_id, client_id, line, f"{amount:.2f}"))
    order: Record = {
        "id": order_id,
        "ordernum": whmcs_records.new_ordernum(),
        "userid": client_id,
        "date": clock.whmcs_datetime(),
        "status": "Pending",
        "paymentmethod": method,
        "invoiceid": 0 if call.flag("noinvoice") else data.next_id("invoice"),
        "amount": f"{total:.2f}",
        "ipaddress": call.text("clientip") or call.remote_addr,
        "notes": "",
        "serviceids": service_ids,
    }
    data.orders[order_id] = order
    return order


def _store_service(
    data: WhmcsData, order_id: int, client_id: int, line: Record, amount: str
) -> int:
    service_id = data.next_id("service")
    data.services[service_id] = {
        "id": service_id,
        "orderid": order_id,
        "clientid": client_id,
        "pid": line["product"]["pid"],
        "domain": line["domain"],
        "status": "Pending",
        "billingcycle": line["billingcycle"],
        "regdate": clock.whmcs_date(),
        "qty": line["qty"],
        "amount": amount,
        "customfields": line["customfields"],
        "notes": "",
    }
    return service_id


def accept_order(call: Call) -> dict[str, Any]:
    order = call.data.orders.get(call.number("orderid") or 0)
    if order is None or order["status"] != "Pending":
        raise WhmcsError(_NOT_PENDING)
    order["status"] = "Active"
    if call.flag("autosetup"):
        if call.module_failure:
            # The order is accepted but provisioning failed: services stay Pending.
            raise WhmcsError(call.module_failure)
        for service in _services_of(call.data, order):
            if service["status"] == "Pending":
                service["status"] = "Active"
    return success()


def cancel_order(call: Call) -> dict[str, Any]:
    order = call.data.orders.get(call.number("orderid") or 0)
    if order is None or order["status"] != "Pending":
        raise WhmcsError(_NOT_PENDING)
    order["status"] = "Cancelled"
    for service in _services_of(call.data, order):
        service["status"] = "Cancelled"
    return success()


def pending_order(call: Call) -> dict[str, Any]:
    order = call.data.orders.get(call.number("orderid") or 0)
    if order is None:
        raise WhmcsError("Order ID Not Found")
    order["status"] = "Pending"
    return success()


def get_orders(call: Call) -> dict[str, Any]:
    order_id, user_id, status = call.number("id"), call.number("userid"), call.text("status")
    matches = [
        order
        for order in sorted(call.data.orders.values(), key=lambda o: o["id"], reverse=True)
        if (order_id is None or order["id"] == order_id)
        and (user_id is None or order["userid"] == user_id)
        and (not status or order["status"].lower() == status.lower())
    ]
    start, size = call.page()
    page = matches[start : start + size]
    return success(
        totalresults=len(matches),
        startnumber=start,
        numreturned=len(page),
        orders={"order": [whmcs_records.order_view(call.data, o) for o in page]},
    )


def get_order_statuses(call: Call) -> dict[str, Any]:
    counts = {status: 0 for status in whmcs_records.ORDER_STATUSES}
    for order in call.data.orders.values():
        counts[order["status"]] = counts.get(order["status"], 0) + 1
    statuses = [{"title": title, "count": count} for title, count in counts.items()]
    return success(totalresults=len(statuses), statuses={"status": statuses})


def _services_of(data: WhmcsData, order: Record) -> list[Record]:
    return [data.services[sid] for sid in order["serviceids"] if sid in data.services]


# --- services and products -------------------------------------------------------------------


def get_clients_products(call: Call) -> dict[str, Any]:
    client_id, service_id, pid = (
        call.number("clientid"),
        call.number("serviceid"),
        call.number("pid"),
    )
    domain = call.params.get("domain")
    matches = [
        s
        for s in sorted(call.data.services.values(), key=lambda s: s["id"])
        if (client_id is None or s["clientid"] == client_id)
        and (service_id is None or s["id"] == service_id)
        and (pid is None or s["pid"] == pid)
        and (not isinstance(domain, str) or not domain or s["domain"] == domain)
    ]
    start, size = call.page()
    page = matches[start : start + size]
    return success(
        clientid=call.params.get("clientid"),
        serviceid=call.params.get("serviceid"),
        pid=call.params.get("pid"),
        domain=domain,
        totalresults=str(len(matches)),
        startnumber=start,
        numreturned=len(page),
        products={"product": [whmcs_records.service_view(call.data, s) for s in page]},
    )


def module_create(call: Call) -> dict[str, Any]:
    service = _service(call, "Service ID not found")
    if call.module_failure:
        raise WhmcsError(call.module_failure)
    if service["status"] == "Active":
        raise WhmcsError("An account already exists for this service")
    service["status"] = "Active"
    return success()


def update_client_product(call: Call) -> dict[str, Any]:
    service = _service(call, "Service ID Not Found")
    status = call.text("status")
    if status and status not in whmcs_records.SERVICE_STATUSES:
        raise WhmcsError(f"Invalid status: {status}")
    for name in ("notes", "domain", "status"):
        if name in call.params and isinstance(call.params[name], str):
            service[name] = call.params[name]
    product = call.data.products.get(service["pid"], {"customfields": []})
    service["customfields"].update(_custom_values(product, call.params.get("customfields")))
    return success(serviceid=str(service["id"]))


def _service(call: Call, missing: str) -> Record:
    if "serviceid" not in call.params or not call.text("serviceid"):
        raise WhmcsError("Service ID is required")
    service = call.data.services.get(call.number("serviceid") or 0)
    if service is None:
        raise WhmcsError(missing)
    return service


def get_products(call: Call) -> dict[str, Any]:
    wanted = {int(p) for p in call.text("pid").split(",") if p.strip().isdigit()}
    gid, module = call.number("gid"), call.text("module")
    products = [
        whmcs_records.product_view(p)
        for p in sorted(call.data.products.values(), key=lambda p: p["pid"])
        if (not wanted or p["pid"] in wanted)
        and (gid is None or p["gid"] == gid)
        and (not module or p["module"] == module)
    ]
    return success(totalresults=len(products), products={"product": products})


def get_payment_methods(call: Call) -> dict[str, Any]:
    methods = [
        {"module": module, "displayname": name}
        for module, name in whmcs_records.PAYMENT_METHODS.items()
    ]
    return success(totalresults=len(methods), paymentmethods={"paymentmethod": methods})


# Canonical name -> (handler, changes data?)
ACTIONS: dict[str, tuple[Handler, bool]] = {
    "GetClientsDetails": (get_clients_details, False),
    "AddClient": (add_client, True),
    "GetClients": (get_clients, False),
    "AddOrder": (add_order, True),
    "AcceptOrder": (accept_order, True),
    "CancelOrder": (cancel_order, True),
    "PendingOrder": (pending_order, True),
    "GetOrders": (get_orders, False),
    "GetOrderStatuses": (get_order_statuses, False),
    "GetClientsProducts": (get_clients_products, False),
    "ModuleCreate": (module_create, True),
    "UpdateClientProduct": (update_client_product, True),
    "GetProducts": (get_products, False),
    "GetPaymentMethods": (get_payment_methods, False),
}
