"""The small ISP catalogue seeded into both systems on first start.

Each offer exists twice: as a Salesforce Product2 whose `WHMCS_Product_Id__c` names the WHMCS
product, and as that WHMCS product. Every WHMCS product carries the admin-only custom field
"Salesforce Order ID" under the same field id, so a client can tag any service with
`customfields[i] = base64(serialize({1: "<order id>"}))` without looking ids up per product.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import sobjects
from .state import Record, World

SALESFORCE_ORDER_FIELD_ID = 1
SALESFORCE_ORDER_FIELD_NAME = "Salesforce Order ID"
PRODUCT_GROUP = "Broadband"


@dataclass(frozen=True)
class Offer:
    code: str
    name: str
    pid: int
    price: str
    paytype: str  # "recurring" (billed monthly) or "onetime"


CATALOGUE = (
    Offer("FIBRE-100", "Fibre 100 Mbps", 1, "29.00", "recurring"),
    Offer("FIBRE-500", "Fibre 500 Mbps", 2, "39.00", "recurring"),
    Offer("FIBRE-1000", "Fibre 1 Gbps", 3, "49.00", "recurring"),
    Offer("STATIC-IP", "Static IPv4 address", 4, "5.00", "recurring"),
    Offer("ROUTER", "Wi-Fi 6 router", 5, "99.00", "onetime"),
)


def seed(world: World) -> None:
    """Add the catalogue to whichever system has no products yet."""
    with world.lock:
        if not world.whmcs.products:
            for offer in CATALOGUE:
                world.whmcs.products[offer.pid] = _whmcs_product(offer)
            world.changed()
        if not world.salesforce.products:
            for offer in CATALOGUE:
                record = _salesforce_product(offer)
                world.salesforce.products[record["Id"]] = record
            world.changed()


def _whmcs_product(offer: Offer) -> Record:
    return {
        "pid": offer.pid,
        "gid": 1,
        "groupname": PRODUCT_GROUP,
        "type": "other",
        "name": offer.name,
        "description": f"{offer.name} ({offer.code})",
        "module": "autorelease",
        "paytype": offer.paytype,
        "price": offer.price,
        "customfields": [
            {
                "id": SALESFORCE_ORDER_FIELD_ID,
                "name": SALESFORCE_ORDER_FIELD_NAME,
                "description": "Id of the Salesforce Order this service fulfils",
                "required": "",
                "adminonly": "on",
            }
        ],
    }


def _salesforce_product(offer: Offer) -> Record:
    return sobjects.new_record(
        "Product2",
        {
            "Name": offer.name,
            "ProductCode": offer.code,
            "WHMCS_Product_Id__c": str(offer.pid),
            "IsActive": True,
        },
    )


def price_of(world: World, pid: int) -> float:
    """The catalogue price of a WHMCS product, as Salesforce's OrderItem.UnitPrice."""
    product = world.whmcs.products.get(pid)
    return float(product["price"]) if product else 0.0
