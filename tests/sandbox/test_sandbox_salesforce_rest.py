"""The Salesforce emulator's REST API through simple-salesforce, and its control routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
    format_soql,
)

from sandbox import ids

ORDER_FIELDS = [
    "Id", "OrderNumber", "AccountId", "Status", "StatusCode", "EffectiveDate", "Description",
    "Activation_Status__c", "Activation_Error__c", "WHMCS_Order_Id__c", "Approved__c",
    "CreatedDate", "LastModifiedDate", "SystemModstamp",
]  # fmt: skip


def _error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    content = exc.value.content
    assert isinstance(content, list) and len(content) == 1
    return content[0]


def test_get_order_returns_every_field_with_attributes_first(sf: Any, control: Any) -> None:
    created = control.new_order()
    record = sf.Order.get(created["orderId"])
    assert next(iter(record)) == "attributes"
    assert record["attributes"] == {
        "type": "Order",
        "url": f"/services/data/v59.0/sobjects/Order/{created['orderId']}",
    }
    assert list(record)[1:] == ORDER_FIELDS
    assert record["Id"] == created["orderId"] and len(record["Id"]) == 18
    assert record["AccountId"] == created["accountId"]
    assert record["OrderNumber"] == created["orderNumber"] == "00000100"
    assert (record["Status"], record["StatusCode"]) == ("Draft", "Draft")
    assert record["Activation_Status__c"] is None and record["WHMCS_Order_Id__c"] is None
    assert record["CreatedDate"].endswith(".000+0000") and len(record["CreatedDate"]) == 28


def test_get_with_fields_and_15_char_id(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    record = sf.Order.get(order_id[:15], params={"fields": "AccountId, activation_status__c"})
    assert list(record) == ["attributes", "AccountId", "Activation_Status__c", "Id"]
    assert record["Id"] == order_id


def test_get_account_and_its_whmcs_client(sf: Any, control: Any, whmcs: Any) -> None:
    created = control.new_order()
    account = sf.Account.get(created["accountId"])
    client_id = account["WHMCS_Client_Id__c"]
    assert client_id.isdigit()
    details = whmcs.call("GetClientsDetails", clientid=client_id)
    assert details["result"] == "success" and details["client"]["id"] == client_id


def test_get_errors(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Order.get(ids.new_id("Order"))
    assert _error(missing) == {
        "message": "The requested resource does not exist",
        "errorCode": "NOT_FOUND",
    }
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.Order.get("801notanid")
    assert _error(malformed)["errorCode"] == "MALFORMED_ID"
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.Order.get(order_id, params={"fields": "Id,Bogus__c"})
    assert _error(bad_field)["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Bogus__c'" in _error(bad_field)["message"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful(f"sobjects/Contract/{order_id}")


def test_update_returns_204_and_is_logged(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    before = sf.Order.get(order_id)
    assert sf.Order.update(order_id, {"Activation_Status__c": "Activating"}) == 204
    assert (
        sf.Order.update(
            order_id[:15], {"activation_status__c": "Failed", "Activation_Error__c": "boom"}
        )
        == 204
    )
    assert sf.Order.update(order_id, {"Activation_Status__c": None, "WHMCS_Order_Id__c": 12}) == 204
    after = sf.Order.get(order_id)
    assert after["Activation_Status__c"] is None
    assert after["Activation_Error__c"] == "boom"
    assert after["WHMCS_Order_Id__c"] == "12"  # a number sent to a text field is stored as text
    assert after["LastModifiedDate"] >= before["LastModifiedDate"]
    writes = control.order(order_id)["writes"]
    assert [w["fields"] for w in writes] == [
        {"Activation_Status__c": "Activating"},
        {"Activation_Status__c": "Failed", "Activation_Error__c": "boom"},
        {"Activation_Status__c": None, "WHMCS_Order_Id__c": "12"},
    ]
    assert all(w["at"].endswith("Z") for w in writes)


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"Bogus__c": 1}, "INVALID_FIELD", None),
        (
            {"Activation_Status__c": "Done"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["Activation_Status__c"],
        ),
        ({"Status": "Shipped"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
        ({"OrderNumber": "1"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["OrderNumber"]),
        ({"Id": "801"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Id"]),
        ({"SystemModstamp": "x"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["SystemModstamp"]),
        ({"AccountId": "not-an-id"}, "MALFORMED_ID", ["AccountId"]),
        ({"Activation_Error__c": "x" * 32769}, "STRING_TOO_LONG", ["Activation_Error__c"]),
        ({"Description": {"a": 1}}, "JSON_PARSER_ERROR", None),
    ],
)
def test_update_errors(sf: Any, control: Any, body: dict[str, Any], code: str, fields: Any) -> None:
    order_id = control.new_order()["orderId"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Order.update(order_id, body)
    error = _error(exc)
    assert error["errorCode"] == code
    assert error.get("fields") == fields
    if code == "INVALID_FIELD":
        assert error["message"] == "No such column 'Bogus__c' on sobject of type Order"
    assert control.order(order_id)["writes"] == []


def test_update_unknown_order_is_not_found(sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Order.update(ids.new_id("Order"), {"Activation_Status__c": "Activating"})


def test_order_item_query_nests_the_product(sf: Any, control: Any) -> None:
    created = control.new_order(products=["FIBRE-500", {"code": "STATIC-IP", "quantity": 2}])
    soql = format_soql(
        "SELECT Id, Quantity, Product2.WHMCS_Product_Id__c, Product2.Name FROM OrderItem "
        "WHERE OrderId = {}",
        created["orderId"],
    )
    result = sf.query(soql)
    assert (result["totalSize"], result["done"]) == (2, True)
    first, second = result["records"]
    assert list(first) == ["attributes", "Id", "Quantity", "Product2"]
    assert first["attributes"]["type"] == "OrderItem" and first["Id"].startswith("802")
    assert first["Quantity"] == 1.0 and second["Quantity"] == 2.0
    assert first["Product2"]["attributes"]["type"] == "Product2"
    assert {k: v for k, v in first["Product2"].items() if k != "attributes"} == {
        "WHMCS_Product_Id__c": "2",
        "Name": "Fibre 500 Mbps",
    }
    assert second["Product2"]["WHMCS_Product_Id__c"] == "4"
    assert sf.query_all(soql)["totalSize"] == 2


def test_an_order_query_nests_its_items_with_a_subquery(sf: Any, control: Any) -> None:
    created = control.new_order(products=["FIBRE-500", {"code": "STATIC-IP", "quantity": 2}])
    soql = format_soql(
        "SELECT Id, OrderNumber, (SELECT Quantity, UnitPrice, Product2.Name FROM OrderItems) "
        "FROM Order WHERE Id = {}",
        created["orderId"],
    )
    (order,) = sf.query(soql)["records"]
    assert list(order) == ["attributes", "Id", "OrderNumber", "OrderItems"]
    items = order["OrderItems"]
    assert (items["totalSize"], items["done"]) == (2, True)
    assert [(i["Quantity"], i["Product2"]["Name"]) for i in items["records"]] == [
        (1.0, "Fibre 500 Mbps"),
        (2.0, "Static IPv4 address"),
    ]
    assert items["records"][0]["attributes"]["type"] == "OrderItem"


def test_order_query_by_id_and_other_filters(sf: Any, control: Any) -> None:
    first = control.new_order()
    control.new_order(accountId=first["accountId"])
    sf.Order.update(first["orderId"], {"Activation_Status__c": "Activating"})
    by_id = sf.query(
        format_soql(
            "SELECT Id, AccountId, Activation_Status__c FROM Order WHERE Id = {}",
            first["orderId"][:15],
        )
    )
    assert by_id["records"] == [
        {
            "attributes": {
                "type": "Order",
                "url": f"/services/data/v59.0/sobjects/Order/{first['orderId']}",
            },
            "Id": first["orderId"],
            "AccountId": first["accountId"],
            "Activation_Status__c": "Activating",
        }
    ]
    of_account = sf.query(
        format_soql(
            "SELECT OrderNumber, Account.Name FROM Order WHERE AccountId = {} "
            "AND Activation_Status__c != 'activating' ORDER BY OrderNumber DESC LIMIT 5",
            first["accountId"],
        )
    )
    assert of_account["totalSize"] == 1
    assert of_account["records"][0]["Account"]["Name"].startswith("Sandbox Customer")
    in_list = sf.query(
        format_soql("SELECT Id FROM Order WHERE Status IN {}", ["Draft", "Activated"])
    )
    assert in_list["totalSize"] == 2


def test_query_null_relationship_and_like(
    sf: Any, https: Any, sandbox: Any, get_token: Any
) -> None:
    token = get_token()["access_token"]
    base = f"{sandbox.salesforce_url}/services/data/v59.0"
    created = https.post(
        f"{base}/sobjects/OrderItem/",
        json={"OrderId": None, "Product2Id": None, "Quantity": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    result = sf.query("SELECT Id, Product2.Name FROM OrderItem WHERE Product2Id = null")
    assert result["records"][0]["Product2"] is None
    products = sf.query(
        "SELECT ProductCode FROM Product2 WHERE Name LIKE 'fibre%' ORDER BY ProductCode"
    )
    assert [r["ProductCode"] for r in products["records"]] == [
        "FIBRE-100",
        "FIBRE-1000",
        "FIBRE-500",
    ]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT FROM Order", "MALFORMED_QUERY"),
        ("SELECT Id FROM Order WHERE Id = 'a' OR Id = 'b'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Bogus__c", "INVALID_TYPE"),
        ("SELECT Bogus__c FROM Order", "INVALID_FIELD"),
        ("SELECT Bogus.Name FROM Order", "INVALID_FIELD"),
        ("SELECT Product2.Bogus FROM OrderItem", "INVALID_FIELD"),
        ("SELECT Id FROM Order WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM OrderItem WHERE Quantity = '1'", "MALFORMED_QUERY"),
        ("SELECT Id, id FROM Order", "MALFORMED_QUERY"),
        ("SELECT Id, (SELECT Id FROM Bogus) FROM Order", "INVALID_TYPE"),
        ("SELECT Id, (SELECT Bogus__c FROM OrderItems) FROM Order", "INVALID_FIELD"),
        ("SELECT Id, (SELECT Id FROM OrderItems FROM Order", "MALFORMED_QUERY"),
    ],
)
def test_query_errors(sf: Any, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(soql)
    assert _error(exc)["errorCode"] == code


def test_missing_query_and_unknown_paths(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("query/", params={})
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("nothing/here")
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.restful(f"sobjects/Order/{ids.new_id('Order')}", method="DELETE")
    assert exc.value.status == 405


def test_create_order_through_the_api(sf: Any, control: Any) -> None:
    account_id = control.new_order()["accountId"]
    created = sf.Order.create(
        {"AccountId": account_id, "Status": "Draft", "EffectiveDate": "2026-01-15"}
    )
    assert created["success"] is True and created["errors"] == []
    record = sf.Order.get(created["id"])
    assert record["OrderNumber"] == "00000101" and record["StatusCode"] == "Draft"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Order.create({"AccountId": account_id})
    assert _error(missing)["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as dangling:
        sf.Order.create(
            {"AccountId": ids.new_id("Account"), "Status": "Draft", "EffectiveDate": "2026-01-15"}
        )
    assert _error(dangling)["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_limit_info_counts_api_calls(sandbox: Any, https: Any, get_token: Any) -> None:
    headers = {"Authorization": f"Bearer {get_token()['access_token']}"}
    url = f"{sandbox.salesforce_url}/services/data/v59.0/query/"
    params = {"q": "SELECT Id FROM Order"}
    usage = [
        https.get(url, params=params, headers=headers).headers["Sforce-Limit-Info"]
        for _ in range(3)
    ]
    counts = [int(u.removeprefix("api-usage=").split("/")[0]) for u in usage]
    assert counts[1] == counts[0] + 1 and counts[2] == counts[0] + 2
    assert all(u.endswith("/15000") for u in usage)
    unauthenticated = https.get(url, params=params)
    assert unauthenticated.status_code == 401 and "Sforce-Limit-Info" in unauthenticated.headers
    assert "Sforce-Limit-Info" not in https.get(f"{sandbox.salesforce_url}/__sandbox/").headers


def test_simple_salesforce_reads_the_usage(sf: Any) -> None:
    sf.query("SELECT Id FROM Order")
    assert sf.api_usage["api-usage"].total == 15000


# --- control API -----------------------------------------------------------------------------


def test_control_order_shows_record_items_and_writes(sf: Any, control: Any) -> None:
    created = control.new_order(products=["FIBRE-1000", "ROUTER"], description="demo")
    sf.Order.update(created["orderId"], {"WHMCS_Order_Id__c": "7"})
    shown = control.order(created["orderId"])
    assert shown["record"]["Id"] == created["orderId"]
    assert shown["record"]["Description"] == "demo" and shown["record"]["WHMCS_Order_Id__c"] == "7"
    assert [item["UnitPrice"] for item in shown["items"]] == [49.0, 99.0]
    assert shown["writes"][0]["fields"] == {"WHMCS_Order_Id__c": "7"}


def test_control_reuses_or_creates_accounts(control: Any, https: Any) -> None:
    first = control.new_order()
    again = control.new_order(accountId=first["accountId"][:15])
    assert again["accountId"] == first["accountId"]
    chosen = ids.new_id("Account")
    adopted = control.new_order(accountId=chosen)
    assert adopted["accountId"] == chosen
    account = https.get(control.url("salesforce", f"/accounts/{chosen}")).json()
    assert account["Id"] == chosen and account["WHMCS_Client_Id__c"].isdigit()
    assert (
        account["WHMCS_Client_Id__c"]
        != https.get(control.url("salesforce", f"/accounts/{first['accountId']}")).json()[
            "WHMCS_Client_Id__c"
        ]
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"accountId": "001bad"}, "MALFORMED_ID"),
        ({"accountId": "801000000000001AAA"}, "MALFORMED_ID"),
        ({"products": ["NOPE"]}, "UNKNOWN_PRODUCT"),
        ({"products": []}, "BAD_REQUEST"),
        ({"products": [{"code": "ROUTER", "quantity": 0}]}, "BAD_REQUEST"),
        ({"products": "FIBRE-100"}, "BAD_REQUEST"),
        ({"colour": "red"}, "BAD_REQUEST"),
        ([1, 2], "BAD_REQUEST"),
    ],
)
def test_control_order_rejects_bad_bodies(control: Any, body: Any, code: str) -> None:
    response = control.http.post(control.url("salesforce", "/orders"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_control_rejects_bad_json_and_unknown_ids(control: Any) -> None:
    bad_json = control.http.post(control.url("salesforce", "/orders"), data="{nope")
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "BAD_JSON"
    unknown = control.http.get(control.url("salesforce", f"/orders/{ids.new_id('Order')}"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    malformed = control.http.get(control.url("salesforce", "/orders/xyz"))
    assert malformed.status_code == 400
    nowhere = control.http.get(control.url("salesforce", "/nowhere"))
    assert nowhere.status_code == 404 and "error" in nowhere.json()


def test_query_by_modification_time(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    recent = sf.query(
        format_soql(
            "SELECT Id, SystemModstamp FROM Order WHERE SystemModstamp > {} "
            "ORDER BY SystemModstamp ASC",
            an_hour_ago,
        )
    )
    assert [r["Id"] for r in recent["records"]] == [order_id]
    later = sf.query(
        format_soql(
            "SELECT Id FROM Order WHERE LastModifiedDate >= {}", an_hour_ago + timedelta(days=1)
        )
    )
    assert later["totalSize"] == 0
