"""The WHMCS emulator's API with `requests`, as the pipeline's client calls it."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from sandbox import php


def _tag(order_id: str, field_id: int = 1) -> str:
    """customfields[i] as WHMCS wants it: base64(serialize([fieldId => value]))."""
    return base64.b64encode(php.serialize({field_id: order_id}).encode()).decode()


def _client(whmcs: Any, email: str = "ada@example.com") -> str:
    body = whmcs.call("AddClient", firstname="Ada", lastname="Lovelace", email=email)
    assert body["result"] == "success"
    return body["clientid"]


def _order(
    whmcs: Any, client_id: str, sf_id: str = "801000000000001AAA", **extra: Any
) -> dict[str, Any]:
    body = whmcs.call(
        "AddOrder",
        ("pid[0]", "1"),
        ("pid[1]", "4"),
        ("qty[0]", "1"),
        ("qty[1]", "2"),
        ("billingcycle[0]", "monthly"),
        ("billingcycle[1]", "monthly"),
        ("customfields[0]", _tag(sf_id)),
        ("customfields[1]", _tag(sf_id)),
        clientid=client_id,
        paymentmethod="banktransfer",
        noemail="1",
        **extra,
    )
    assert body["result"] == "success", body
    return body


# --- credentials and dispatch ----------------------------------------------------------------


def test_missing_credentials(whmcs: Any) -> None:
    response = whmcs.post("GetOrders", auth=False)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"result": "error", "message": "Invalid or missing credentials"}
    assert whmcs.post("GetOrders", auth=False, identifier="x").status_code == 403


def test_wrong_credentials(whmcs: Any, sandbox: Any) -> None:
    creds = sandbox.credentials["whmcs"]
    response = whmcs.post("GetOrders", auth=False, identifier=creds["identifier"], secret="wrong")
    assert response.status_code == 403
    assert response.json() == {"result": "error", "message": "Authentication Failed"}


def test_username_password_and_query_string_action(whmcs: Any, sandbox: Any) -> None:
    creds = sandbox.credentials["whmcs"]
    response = requests.post(
        f"{sandbox.whmcs_url}/api.php?action=getorders",
        data={"username": creds["identifier"], "password": creds["secret"]},
        timeout=5,
    )
    assert response.status_code == 200 and response.json()["result"] == "success"


def test_unknown_action(whmcs: Any) -> None:
    assert whmcs.call("AddPromotion") == {
        "result": "error",
        "message": 'Invalid API Action: "addpromotion" is not a valid API action',
    }


# --- clients ---------------------------------------------------------------------------------


def test_add_and_get_client(whmcs: Any) -> None:
    client_id = _client(whmcs)
    assert client_id.isdigit()
    by_id = whmcs.call("GetClientsDetails", clientid=client_id)
    by_email = whmcs.call("GetClientsDetails", email="ADA@example.com")
    assert by_id["client"] == by_email["client"]
    client = by_id["client"]
    assert (client["id"], client["firstname"], client["status"]) == (client_id, "Ada", "Active")
    assert whmcs.call("GetClientsDetails", clientid="999") == {
        "result": "error",
        "message": "Client Not Found",
    }
    assert whmcs.call("GetClientsDetails")["message"] == "Either clientid Or email Is Required"
    assert whmcs.call("AddClient", firstname="A", lastname="B", email="ada@example.com")[
        "message"
    ] == ("A user already exists with that email address")
    assert (
        whmcs.call("AddClient", firstname="A", lastname="B")["message"]
        == "You did not enter your email address"
    )
    found = whmcs.call("GetClients", search="lovelace")
    assert (
        found["totalresults"] == 1 and found["clients"]["client"][0]["email"] == "ada@example.com"
    )


# --- orders ----------------------------------------------------------------------------------


def test_add_order_creates_pending_order_and_tagged_services(whmcs: Any, control: Any) -> None:
    client_id = _client(whmcs)
    body = _order(whmcs, client_id)
    assert set(body) == {"result", "orderid", "serviceids", "addonids", "domainids", "invoiceid"}
    assert body["orderid"].isdigit() and body["invoiceid"].isdigit()
    service_ids = body["serviceids"].split(",")
    assert len(service_ids) == 2 and (body["addonids"], body["domainids"]) == ("", "")

    orders = whmcs.call("GetOrders", id=body["orderid"])
    assert (orders["totalresults"], orders["startnumber"], orders["numreturned"]) == (1, 0, 1)
    order = orders["orders"]["order"][0]
    assert order["id"] == int(body["orderid"]) and order["userid"] == int(client_id)
    assert isinstance(order["ordernum"], int) and len(str(order["ordernum"])) == 10
    assert order["status"] == "Pending" and order["amount"] == "39.00"
    assert order["invoiceid"] == int(body["invoiceid"]) and order["paymentmethod"] == "banktransfer"
    lines = order["lineitems"]["lineitem"]
    assert [line["relid"] for line in lines] == [int(s) for s in service_ids]
    assert [line["status"] for line in lines] == ["Pending", "Pending"]
    assert lines[1]["billingcycle"] == "Monthly" and lines[1]["amount"] == "10.00"

    summary = control.whmcs_orders("801000000000001AAA")
    assert summary == [
        {
            "id": int(body["orderid"]),
            "status": "Pending",
            "clientid": int(client_id),
            "ordernum": order["ordernum"],
            "services": [
                {
                    "id": int(sid),
                    "pid": pid,
                    "status": "Pending",
                    "customfields": {"1": "801000000000001AAA"},
                }
                for sid, pid in zip(service_ids, (1, 4), strict=True)
            ],
        }
    ]
    assert control.whmcs_orders("801000000000001") == summary  # the 15-character form matches too
    assert control.whmcs_orders("801000000000002AAA") == []


def test_get_clients_products_shape_and_custom_field(whmcs: Any) -> None:
    client_id = _client(whmcs)
    body = _order(whmcs, client_id, sf_id="801000000000009AAA")
    products = whmcs.call("GetClientsProducts", clientid=client_id, pid="4")
    assert products["clientid"] == client_id and products["pid"] == "4"
    assert products["serviceid"] is None and products["domain"] is None
    assert (products["totalresults"], products["startnumber"], products["numreturned"]) == (
        "1",
        0,
        1,
    )
    service = products["products"]["product"][0]
    assert service["id"] == body["serviceids"].split(",")[1]
    assert (service["clientid"], service["orderid"], service["pid"]) == (
        client_id,
        body["orderid"],
        "4",
    )
    assert (service["status"], service["billingcycle"], service["qty"]) == (
        "Pending",
        "Monthly",
        "2",
    )
    assert service["name"] == "Static IPv4 address" and service["regdate"].count("-") == 2
    assert service["customfields"] == {
        "customfield": [
            {
                "id": "1",
                "name": "Salesforce Order ID",
                "translated_name": "Salesforce Order ID",
                "value": "801000000000009AAA",
            }
        ]
    }


def test_paging_and_filters(whmcs: Any) -> None:
    client_id = _client(whmcs)
    for n in range(3):
        _order(whmcs, client_id, sf_id=f"80100000000000{n}AAA")
    page = whmcs.call("GetOrders", userid=client_id, limitstart="1", limitnum="1")
    assert (page["totalresults"], page["startnumber"], page["numreturned"]) == (3, 1, 1)
    assert page["orders"]["order"][0]["id"] == 2  # newest first
    services = whmcs.call("GetClientsProducts", clientid=client_id, limitnum="4")
    assert (services["totalresults"], services["numreturned"]) == ("6", 4)
    assert whmcs.call("GetOrders", status="Active")["orders"] == {"order": []}
    assert whmcs.call("GetClientsProducts", serviceid="99")["products"] == {"product": []}


def test_add_order_with_empty_brackets_domains_and_no_invoice(whmcs: Any) -> None:
    client_id = _client(whmcs)
    body = whmcs.call(
        "AddOrder",
        ("pid[]", "5"),
        ("domain[]", "home.example"),
        ("customfields[]", _tag("801000000000003AAA")),
        clientid=client_id,
        paymentmethod="stripe",
        noinvoice="1",
    )
    assert body["result"] == "success" and "invoiceid" not in body
    service = whmcs.call("GetClientsProducts", domain="home.example")["products"]["product"][0]
    assert service["billingcycle"] == "One Time" and service["pid"] == "5"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"clientid": "999", "paymentmethod": "banktransfer", "pid[0]": "1"},
            "Client ID Not Found",
        ),
        (
            {"paymentmethod": "cash", "pid[0]": "1"},
            "Invalid Payment Method. Valid options include banktransfer,mailin,paypal,stripe",
        ),
        ({"paymentmethod": "banktransfer", "pid": "1"}, "Expecting parameter 'pid' to be an array"),
        (
            {"paymentmethod": "banktransfer", "pid[0]": "1", "qty": "1"},
            "Expecting parameter 'qty' to be an array",
        ),
        ({"paymentmethod": "banktransfer"}, "No items added to cart so order cannot proceed"),
        (
            {"paymentmethod": "banktransfer", "pid[0]": "77"},
            "No items added to cart so order cannot proceed",
        ),
    ],
)
def test_add_order_errors(whmcs: Any, params: dict[str, str], message: str) -> None:
    params = {"clientid": _client(whmcs), **params}
    body = whmcs.call("AddOrder", *params.items())
    assert body == {"result": "error", "message": message}


def test_unreadable_custom_fields_are_ignored(whmcs: Any, control: Any) -> None:
    client_id = _client(whmcs)
    body = whmcs.call(
        "AddOrder",
        ("pid[0]", "1"),
        ("customfields[0]", "!!notbase64"),
        clientid=client_id,
        paymentmethod="mailin",
    )
    assert body["result"] == "success"
    assert control.whmcs_orders()[0]["services"][0]["customfields"] == {}


def test_accept_order_activates_once(whmcs: Any, control: Any) -> None:
    order_id = _order(whmcs, _client(whmcs))["orderid"]
    assert whmcs.call("AcceptOrder", orderid=order_id, autosetup="1", sendemail="1") == {
        "result": "success"
    }
    order = whmcs.call("GetOrders", id=order_id)["orders"]["order"][0]
    assert order["status"] == "Active"
    assert {line["status"] for line in order["lineitems"]["lineitem"]} == {"Active"}
    again = whmcs.call("AcceptOrder", orderid=order_id, autosetup="1")
    assert again == {"result": "error", "message": "Order ID not found or Status not Pending"}
    assert whmcs.call("AcceptOrder", orderid="999")["result"] == "error"


def test_accept_without_autosetup_then_module_create(whmcs: Any) -> None:
    body = _order(whmcs, _client(whmcs))
    assert whmcs.call("AcceptOrder", orderid=body["orderid"], autosetup="0")["result"] == "success"
    service_id = body["serviceids"].split(",")[0]
    service = whmcs.call("GetClientsProducts", serviceid=service_id)["products"]["product"][0]
    assert service["status"] == "Pending"
    assert whmcs.call("ModuleCreate", serviceid=service_id) == {"result": "success"}
    service = whmcs.call("GetClientsProducts", serviceid=service_id)["products"]["product"][0]
    assert service["status"] == "Active"
    assert whmcs.call("ModuleCreate", serviceid=service_id)["result"] == "error"
    assert whmcs.call("ModuleCreate", serviceid="999")["message"] == "Service ID not found"
    assert whmcs.call("ModuleCreate")["message"] == "Service ID is required"


def test_python_booleans_are_php_truthy(whmcs: Any) -> None:
    body = _order(whmcs, _client(whmcs))
    # "False" is a non-empty string, so PHP reads it as true: the services get set up.
    whmcs.call("AcceptOrder", orderid=body["orderid"], autosetup="False")
    service_id = body["serviceids"].split(",")[0]
    assert (
        whmcs.call("GetClientsProducts", serviceid=service_id)["products"]["product"][0]["status"]
        == "Active"
    )


def test_cancel_pending_and_update_service(whmcs: Any) -> None:
    body = _order(whmcs, _client(whmcs))
    service_id = body["serviceids"].split(",")[0]
    updated = whmcs.call(
        "UpdateClientProduct",
        serviceid=service_id,
        notes="sf:801",
        customfields=_tag("801000000000005AAA"),
    )
    assert updated == {"result": "success", "serviceid": service_id}
    service = whmcs.call("GetClientsProducts", serviceid=service_id)["products"]["product"][0]
    assert (
        service["notes"] == "sf:801"
        and service["customfields"]["customfield"][0]["value"] == "801000000000005AAA"
    )
    assert whmcs.call("UpdateClientProduct", serviceid="999")["message"] == "Service ID Not Found"
    assert whmcs.call("CancelOrder", orderid=body["orderid"]) == {"result": "success"}
    assert whmcs.call("CancelOrder", orderid=body["orderid"])["result"] == "error"
    assert whmcs.call("PendingOrder", orderid=body["orderid"]) == {"result": "success"}
    statuses = whmcs.call("GetOrderStatuses")["statuses"]["status"]
    assert {"title": "Pending", "count": 1} in statuses


def test_catalogue_actions(whmcs: Any) -> None:
    products = whmcs.call("GetProducts")
    assert products["totalresults"] == 5
    names = [p["name"] for p in products["products"]["product"]]
    assert names == [
        "Fibre 100 Mbps",
        "Fibre 500 Mbps",
        "Fibre 1 Gbps",
        "Static IPv4 address",
        "Wi-Fi 6 router",
    ]
    fibre = whmcs.call("GetProducts", pid="1")["products"]["product"][0]
    assert fibre["pid"] == 1 and fibre["pricing"]["USD"]["monthly"] == "29.00"
    assert fibre["customfields"]["customfield"][0]["name"] == "Salesforce Order ID"
    methods = whmcs.call("GetPaymentMethods")["paymentmethods"]["paymentmethod"]
    assert [m["module"] for m in methods] == ["banktransfer", "mailin", "paypal", "stripe"]


def test_demo_orders_link_to_whmcs_clients(whmcs: Any, control: Any, https: Any) -> None:
    created = control.new_order()
    account = https.get(control.url("salesforce", f"/accounts/{created['accountId']}")).json()
    body = _order(whmcs, account["WHMCS_Client_Id__c"], sf_id=created["orderId"])
    assert [o["id"] for o in control.whmcs_orders(created["orderId"])] == [int(body["orderid"])]


def test_control_lists_all_orders_and_health(whmcs: Any, control: Any) -> None:
    client_id = _client(whmcs)
    _order(whmcs, client_id, sf_id="801000000000001AAA")
    _order(whmcs, client_id, sf_id="801000000000002AAA")
    assert len(control.whmcs_orders()) == 2
    health = control.http.get(control.url("whmcs", "/"))
    assert health.json() == {"system": "whmcs", "status": "ok"}
