"""`SalesforceGateway.activate_and_read` against the sandbox: one Composite call (one API call)
that marks the order Activating and reads back what fulfillment and the order page need;
real simple-salesforce over real HTTPS, errors mapped as for any call."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import pytest
from simple_salesforce import Salesforce

from integrations import (
    OrderActivation,
    OrderFacts,
    OrderLine,
    PermanentError,
    SalesforceGateway,
    TransientError,
)
from integrations.http import GatewaySession

ACTIVATING = {"Activation_Status__c": "Activating", "Activation_Error__c": None}


@pytest.fixture
def salesforce(sandbox) -> SalesforceGateway:
    return SalesforceGateway()


@pytest.fixture
def rest(sandbox) -> Salesforce:
    """A plain simple-salesforce client of the sandbox, for records the control API does not
    make (a product without a WHMCS id, an order without items)."""
    creds = sandbox.credentials["salesforce"]
    session = GatewaySession(5, sandbox.ca_file)  # trusts the sandbox whatever the environment
    token = session.post(
        f"{sandbox.salesforce_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["clientId"], creds["clientSecret"]),
    ).json()
    return Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )


def status_writes(sandbox_client, order_id: str) -> list[dict[str, Any]]:
    return [w["fields"] for w in sandbox_client.salesforce_order(order_id)["writes"]]


def test_activation_writes_and_reads_the_order_in_one_api_call(salesforce, sandbox_client):
    order = sandbox_client.create_order(products=["FIBRE-100", {"code": "ROUTER", "quantity": 2}])
    order_id = order["orderId"]
    # A status and an error from an earlier run: the read must show what the write made.
    salesforce.update_order(order_id, status="Failed", error="WHMCS was down")
    calls, counted = sandbox_client.api_calls(), salesforce.api_calls

    activation = salesforce.activate_and_read(order_id[:15])  # the 15-character form works

    assert sandbox_client.api_calls() - calls == 1
    assert salesforce.api_calls - counted == 1
    assert isinstance(activation, OrderActivation)
    record = activation.order
    assert (record.order_id, record.account_id) == (order_id, order["accountId"])
    assert record.activation_status == "Activating"
    assert isinstance(record.client_id, int) and record.client_id > 0
    assert activation.lines == (
        OrderLine(product_id=1, quantity=1, name="Fibre 100 Mbps"),
        OrderLine(product_id=5, quantity=2, name="Wi-Fi 6 router"),
    )
    summary = activation.summary
    assert summary.number == order["orderNumber"]
    assert summary.items == (("Fibre 100 Mbps", 1), ("Wi-Fi 6 router", 2))
    assert summary.total == 29.0 + 2 * 99.0
    assert summary.placed and len(summary.placed) == 10  # EffectiveDate, an ISO date
    assert activation.facts == OrderFacts(order["accountId"], summary)
    assert status_writes(sandbox_client, order_id)[-1] == ACTIVATING


def test_the_read_matches_the_separate_reads(salesforce, sandbox_client):
    order = sandbox_client.create_order(products=["FIBRE-1000", "STATIC-IP"])
    order_id = order["orderId"]
    activation = salesforce.activate_and_read(order_id)
    assert activation.order == salesforce.get_order(order_id)
    assert list(activation.lines) == salesforce.get_order_lines(order_id)
    assert activation.facts == salesforce.get_order_facts([order_id])[order_id]


def test_the_client_id_of_an_account_without_one_is_none(salesforce, sandbox_client, rest):
    order = sandbox_client.create_order()
    rest.Account.update(order["accountId"], {"WHMCS_Client_Id__c": None})
    assert salesforce.activate_and_read(order["orderId"]).order.client_id is None


def test_an_unknown_order_is_permanent_and_costs_one_call(salesforce, sandbox_client):
    calls = sandbox_client.api_calls()
    with pytest.raises(PermanentError) as caught:
        salesforce.activate_and_read("801000000000404AAA")
    assert caught.value.code == "SALESFORCE_NOT_FOUND"
    assert caught.value.system == "salesforce"
    assert sandbox_client.api_calls() - calls == 1


def test_a_read_that_fails_rolls_the_write_back(sandbox_client):
    # A product field the org does not have: the query fails after the PATCH succeeded.
    settings = replace(SalesforceGateway().settings, product_field="No_Such_Field__c")
    order = sandbox_client.create_order()
    with pytest.raises(PermanentError) as caught:
        SalesforceGateway(settings).activate_and_read(order["orderId"])
    assert caught.value.code == "SALESFORCE_ERROR"
    assert "INVALID_FIELD" in caught.value.message
    shown = sandbox_client.salesforce_order(order["orderId"])
    assert shown["writes"] == [] and shown["record"]["Activation_Status__c"] is None


@pytest.mark.parametrize(
    ("action", "fault", "error", "code"),
    [
        ("composite", {"mode": "limit"}, TransientError, "SALESFORCE_LIMIT"),
        (
            "composite",
            {"mode": "error", "errorCode": "UNABLE_TO_LOCK_ROW"},
            TransientError,
            "SALESFORCE_LOCKED",
        ),
        ("composite", {"mode": "http500"}, TransientError, "SALESFORCE_UNAVAILABLE"),
        ("composite", {"mode": "http503"}, TransientError, "SALESFORCE_UNAVAILABLE"),
        ("composite", {"mode": "html"}, TransientError, "SALESFORCE_BAD_RESPONSE"),
        ("composite", {"mode": "truncated"}, TransientError, "SALESFORCE_BAD_RESPONSE"),
        (
            "composite",
            {"mode": "timeout", "holdMs": 2500},
            TransientError,
            "SALESFORCE_UNAVAILABLE",
        ),
        # The call and its one retry after logging in again: no loop.
        ("composite", {"mode": "expire_session", "times": 2}, TransientError, "SALESFORCE_SESSION"),
        ("composite", {"mode": "garbled"}, PermanentError, "SALESFORCE_BAD_RESPONSE"),
        # Aimed at the subrequests: the PATCH's own answer, or the query's after the PATCH.
        (
            "update",
            {"mode": "error", "errorCode": "UNABLE_TO_LOCK_ROW"},
            TransientError,
            "SALESFORCE_LOCKED",
        ),
        ("update", {"mode": "http500"}, TransientError, "SALESFORCE_UNAVAILABLE"),
        (
            "query",
            {"mode": "error", "errorCode": "SERVER_UNAVAILABLE"},
            TransientError,
            "SALESFORCE_UNAVAILABLE",
        ),
        ("query", {"mode": "limit"}, TransientError, "SALESFORCE_LIMIT"),
    ],
)
def test_faults_on_the_composite_call_are_mapped(
    salesforce, sandbox_client, action, fault, error, code
):
    order = sandbox_client.create_order()
    sandbox_client.fault("salesforce", action, **{"times": 1, **fault})
    with pytest.raises(error) as caught:
        salesforce.activate_and_read(order["orderId"])
    assert caught.value.code == code
    assert caught.value.system == "salesforce"
    if fault["mode"] != "timeout":  # a timeout's write lands; its answer is what is lost
        assert status_writes(sandbox_client, order["orderId"]) == []
    # The fault is spent: the next attempt activates.
    activation = salesforce.activate_and_read(order["orderId"])
    assert activation.order.activation_status == "Activating"


@pytest.mark.parametrize("action", ["composite", "update"])
def test_an_expired_session_logs_in_again_once(salesforce, sandbox_client, action):
    order = sandbox_client.create_order()
    salesforce.get_order(order["orderId"])  # a session to expire
    sandbox_client.fault("salesforce", action, mode="expire_session", times=1)
    activation = salesforce.activate_and_read(order["orderId"])
    assert activation.order.activation_status == "Activating"
    assert status_writes(sandbox_client, order["orderId"]) == [ACTIVATING]


def test_a_product_without_a_whmcs_id_is_not_mapped(salesforce, sandbox_client, rest):
    order = sandbox_client.create_order()
    product = rest.Product2.create(
        {"Name": "Unmapped gadget", "ProductCode": f"UNMAPPED-{secrets.token_hex(3)}"}
        | {"IsActive": True}
    )
    item = {"OrderId": order["orderId"], "Product2Id": product["id"], "Quantity": 1}
    rest.OrderItem.create(item | {"UnitPrice": 10.0})

    with pytest.raises(PermanentError) as caught:
        salesforce.activate_and_read(order["orderId"])

    assert caught.value.code == "PRODUCT_NOT_MAPPED"
    assert "Unmapped gadget" in caught.value.message
    # The lines are checked once the answer is here, so the order is left Activating for
    # fulfillment to fail with the reason.
    assert status_writes(sandbox_client, order["orderId"]) == [ACTIVATING]


def test_an_order_without_items_is_empty(salesforce, sandbox_client, rest):
    account_id = sandbox_client.create_order()["accountId"]
    created = rest.Order.create(
        {"AccountId": account_id, "Status": "Draft", "EffectiveDate": "2026-01-15"}
    )
    with pytest.raises(PermanentError) as caught:
        salesforce.activate_and_read(created["id"])
    assert caught.value.code == "ORDER_EMPTY"


def test_a_bad_quantity_is_bad_data(salesforce, sandbox_client, rest):
    order = sandbox_client.create_order()
    [item] = sandbox_client.salesforce_order(order["orderId"])["items"]
    rest.OrderItem.update(item["Id"], {"Quantity": -1})
    with pytest.raises(PermanentError) as caught:
        salesforce.activate_and_read(order["orderId"])
    assert caught.value.code == "SALESFORCE_BAD_DATA"


def test_completion_is_still_one_patch(salesforce, sandbox_client):
    order = sandbox_client.create_order()
    salesforce.activate_and_read(order["orderId"])
    calls = sandbox_client.api_calls()
    salesforce.update_order(order["orderId"], status="Completed", whmcs_order_id=42)
    assert sandbox_client.api_calls() - calls == 1
    assert status_writes(sandbox_client, order["orderId"])[-1] == {
        "Activation_Status__c": "Completed",
        "Activation_Error__c": None,
        "WHMCS_Order_Id__c": "42",
    }
