"""WHMCS records: how they are stored, and how each API action shows them.

Stored records keep plain Python types. The views reproduce WHMCS's inconsistent typing on
purpose, as documented per action: GetOrders answers ints for ids and strings for money,
GetClientsProducts and GetClientsDetails answer strings for nearly everything, GetProducts
answers ints for ids.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from . import clock
from .state import Record, WhmcsData

PAYMENT_METHODS = {
    "banktransfer": "Bank Transfer",
    "mailin": "Mail In Payment",
    "paypal": "PayPal",
    "stripe": "Credit Card",
}
BILLING_CYCLES = {
    "free": "Free Account",
    "onetime": "One Time",
    "monthly": "Monthly",
    "quarterly": "Quarterly",
    "semiannually": "Semi-Annually",
    "annually": "Annually",
    "biennially": "Biennially",
    "triennially": "Triennially",
}
ORDER_STATUSES = ("Pending", "Active", "Fraud", "Cancelled")
SERVICE_STATUSES = (
    "Pending", "Active", "Suspended", "Terminated", "Cancelled", "Fraud", "Completed",
)  # fmt: skip


def new_client(data: WhmcsData, firstname: str, lastname: str, email: str, **extra: str) -> Record:
    """Store a new Active client; `extra` holds optional AddClient fields."""
    client_id = data.next_id("client")
    record: Record = {
        "id": client_id,
        "uuid": str(uuid.uuid4()),
        "firstname": firstname,
        "lastname": lastname,
        "email": email,
        "status": "Active",
        "datecreated": clock.whmcs_date(),
        **{key: str(value) for key, value in extra.items()},
    }
    data.clients[client_id] = record
    return record


def find_client_by_email(data: WhmcsData, email: str) -> Record | None:
    wanted = email.strip().lower()
    return next((c for c in data.clients.values() if c["email"].lower() == wanted), None)


def new_ordernum() -> int:
    """WHMCS order numbers are random 10-digit numbers."""
    return 1_000_000_000 + secrets.randbelow(9_000_000_000)


def client_view(client: Record) -> dict[str, Any]:
    """GetClientsDetails' `client` object (all strings, as documented)."""
    text = {key: "" if value is None else str(value) for key, value in client.items()}
    fields = (
        "companyname", "address1", "address2", "city", "state", "postcode", "country",
        "phonenumber", "notes",
    )  # fmt: skip
    view = {name: text.get(name, "") for name in fields}
    view.update(
        userid=text["id"],
        id=text["id"],
        uuid=text["uuid"],
        firstname=text["firstname"],
        lastname=text["lastname"],
        fullname=f"{text['firstname']} {text['lastname']}".strip(),
        email=text["email"],
        fullstate=view["state"],
        countrycode=view["country"],
        status=text["status"],
        currency="1",
        currency_code="USD",
        credit="0.00",
        groupid=text.get("groupid", "0") or "0",
        language=text.get("language", ""),
    )
    return view


def order_view(data: WhmcsData, order: Record) -> dict[str, Any]:
    """One entry of GetOrders' `orders.order` list (ints for ids, strings for money)."""
    client = data.clients.get(order["userid"], {})
    services = [data.services[sid] for sid in order["serviceids"] if sid in data.services]
    return {
        "id": order["id"],
        "ordernum": order["ordernum"],
        "userid": order["userid"],
        "contactid": 0,
        "requestor_id": order["userid"],
        "admin_requestor_id": 0,
        "date": order["date"],
        "nameservers": "",
        "transfersecret": "",
        "renewals": "",
        "renewalsByType": {"domains": [], "services": [], "addons": []},
        "promocode": "",
        "promotype": "",
        "promovalue": "",
        "orderdata": "[]",
        "amount": order["amount"],
        "paymentmethod": order["paymentmethod"],
        "invoiceid": order["invoiceid"],
        "status": order["status"],
        "ipaddress": order["ipaddress"],
        "fraudmodule": "",
        "fraudoutput": "",
        "notes": order["notes"],
        "paymentmethodname": PAYMENT_METHODS.get(order["paymentmethod"], ""),
        "paymentstatus": "Unpaid" if order["invoiceid"] else "",
        "name": f"{client.get('firstname', '')} {client.get('lastname', '')}".strip(),
        "currencyprefix": "$",
        "currencysuffix": " USD",
        "frauddata": "",
        "validationdata": "",
        "lineitems": {"lineitem": [_line_item(data, s) for s in services]},
    }


def _line_item(data: WhmcsData, service: Record) -> dict[str, Any]:
    product = data.products.get(service["pid"], {})
    return {
        "type": "product",
        "relid": service["id"],
        "producttype": "Other Product/Service",
        "product": f"{product.get('groupname', '')} - {product.get('name', '')}",
        "domain": service["domain"],
        "billingcycle": BILLING_CYCLES.get(service["billingcycle"], service["billingcycle"]),
        "amount": service["amount"],
        "status": service["status"],
    }


def service_view(data: WhmcsData, service: Record) -> dict[str, Any]:
    """One entry of GetClientsProducts' `products.product` list (strings, as documented)."""
    product = data.products.get(service["pid"], {})
    order = data.orders.get(service["orderid"], {})
    recurring = service["amount"] if product.get("paytype") == "recurring" else "0.00"
    return {
        "id": str(service["id"]),
        "qty": str(service["qty"]),
        "clientid": str(service["clientid"]),
        "orderid": str(service["orderid"]),
        "ordernumber": str(order.get("ordernum", "")),
        "pid": str(service["pid"]),
        "regdate": service["regdate"],
        "name": product.get("name", ""),
        "translated_name": product.get("name", ""),
        "groupname": product.get("groupname", ""),
        "translated_groupname": product.get("groupname", ""),
        "domain": service["domain"],
        "dedicatedip": "",
        "serverid": "0",
        "servername": "",
        "serverip": "",
        "serverhostname": "",
        "suspensionreason": "",
        "firstpaymentamount": service["amount"],
        "recurringamount": recurring,
        "paymentmethod": order.get("paymentmethod", ""),
        "paymentmethodname": PAYMENT_METHODS.get(order.get("paymentmethod", ""), ""),
        "billingcycle": BILLING_CYCLES.get(service["billingcycle"], service["billingcycle"]),
        "nextduedate": service["regdate"],
        "status": service["status"],
        "username": "",
        "password": "",
        "subscriptionid": "",
        "promoid": "0",
        "overideautosuspend": "",
        "overidesuspenduntil": "0000-00-00",
        "ns1": "",
        "ns2": "",
        "assignedips": "",
        "notes": service["notes"],
        "diskusage": "0",
        "disklimit": "0",
        "bwusage": "0",
        "bwlimit": "0",
        "lastupdate": "0000-00-00 00:00:00",
        "customfields": {"customfield": _custom_fields(product, service)},
        "configoptions": {"configoption": []},
    }


def _custom_fields(product: Record, service: Record) -> list[dict[str, str]]:
    values = service["customfields"]
    return [
        {
            "id": str(definition["id"]),
            "name": definition["name"],
            "translated_name": definition["name"],
            "value": values.get(str(definition["id"]), ""),
        }
        for definition in product.get("customfields", [])
    ]


def product_view(product: Record) -> dict[str, Any]:
    """One entry of GetProducts' `products.product` list."""
    cycles = ("quarterly", "semiannually", "annually", "biennially", "triennially")
    pricing = {f"{c[0]}setupfee": "0.00" for c in ("m", "q", "s", "a", "b", "t")}
    # WHMCS keeps a one-time price in the `monthly` column too.
    pricing.update({"prefix": "$", "suffix": " USD", "monthly": product["price"]})
    pricing.update({cycle: "-1.00" for cycle in cycles})
    return {
        "pid": product["pid"],
        "gid": product["gid"],
        "type": product["type"],
        "name": product["name"],
        "description": product["description"],
        "module": product["module"],
        "paytype": product["paytype"],
        "allowqty": 0,
        "quantity_available": 0,
        "pricing": {"USD": pricing},
        "customfields": {
            "customfield": [
                {k: f[k] for k in ("id", "name", "description", "required")}
                for f in product["customfields"]
            ]
        },
        "configoptions": {"configoption": []},
    }
