"""The gateways against the sandbox: real clients, real HTTP(S), vendor errors mapped to the
transient/permanent tree."""

from __future__ import annotations

import pytest

from integrations import PermanentError, SalesforceGateway, TransientError, WhmcsGateway
from integrations.records import OrderLine
from integrations.whmcs import encode_form, php_serialized_map


@pytest.fixture
def salesforce(sandbox) -> SalesforceGateway:
    return SalesforceGateway()


@pytest.fixture
def whmcs(sandbox) -> WhmcsGateway:
    return WhmcsGateway()


def test_the_salesforce_gateway_reads_and_writes_an_order(salesforce, sandbox_client):
    order = sandbox_client.create_order(products=["FIBRE-100", {"code": "ROUTER", "quantity": 2}])

    record = salesforce.get_order(order["orderId"][:15])  # the 15-character form works too
    lines = salesforce.get_order_lines(order["orderId"])
    salesforce.update_order(order["orderId"], status="Activating")

    assert record.order_id == order["orderId"]
    assert record.account_id == order["accountId"]
    assert isinstance(record.client_id, int)
    assert [(line.name, line.quantity) for line in lines] == [
        ("Fibre 100 Mbps", 1),
        ("Wi-Fi 6 router", 2),
    ]
    writes = sandbox_client.salesforce_order(order["orderId"])["writes"]
    expected = {"Activation_Status__c": "Activating", "Activation_Error__c": None}
    assert writes[-1]["fields"] == expected
    assert salesforce.get_account_id(order["orderId"]) == order["accountId"]


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        ({"mode": "limit"}, TransientError, "SALESFORCE_LIMIT"),
        ({"mode": "error", "errorCode": "UNABLE_TO_LOCK_ROW"}, TransientError, "SALESFORCE_LOCKED"),
        ({"mode": "http500"}, TransientError, "SALESFORCE_UNAVAILABLE"),
        ({"mode": "http503"}, TransientError, "SALESFORCE_UNAVAILABLE"),
        ({"mode": "html"}, TransientError, "SALESFORCE_BAD_RESPONSE"),
        ({"mode": "truncated"}, TransientError, "SALESFORCE_BAD_RESPONSE"),
        ({"mode": "timeout", "holdMs": 2500}, TransientError, "SALESFORCE_UNAVAILABLE"),
        ({"mode": "error"}, PermanentError, "SALESFORCE_ERROR"),
    ],
)
def test_salesforce_errors_are_mapped(salesforce, sandbox_client, fault, error, code):
    order = sandbox_client.create_order()
    sandbox_client.fault("salesforce", "query", times=1, **fault)
    with pytest.raises(error) as caught:
        salesforce.get_order(order["orderId"])
    assert caught.value.code == code
    assert caught.value.system == "salesforce"


def test_an_unknown_salesforce_order_is_permanent(salesforce):
    with pytest.raises(PermanentError) as caught:
        salesforce.get_order("801000000000404AAA"[:15])
    assert caught.value.code == "SALESFORCE_NOT_FOUND"
    assert salesforce.get_account_id("801000000000404AAA"[:15]) is None


def test_an_expired_session_logs_in_again_once(salesforce, sandbox_client):
    order = sandbox_client.create_order()
    salesforce.get_order(order["orderId"])
    sandbox_client.fault("salesforce", "query", mode="expire_session", times=1)
    assert salesforce.get_order(order["orderId"]).order_id == order["orderId"]


def test_a_session_that_stays_expired_is_transient_not_a_loop(salesforce, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault("salesforce", "query", mode="expire_session", times=5)
    with pytest.raises(TransientError) as caught:
        salesforce.get_order(order["orderId"])
    assert caught.value.code == "SALESFORCE_SESSION"


def test_refused_credentials_are_permanent(sandbox_client, sandbox):
    from dataclasses import replace

    settings = replace(SalesforceGateway().settings, client_secret="wrong")
    with pytest.raises(PermanentError) as caught:
        SalesforceGateway(settings).get_order("801000000000404AAA"[:15])
    assert caught.value.code == "SALESFORCE_AUTH"
    assert "wrong" not in caught.value.message


def test_the_whmcs_gateway_creates_finds_and_accepts(whmcs, salesforce, sandbox_client):
    order = sandbox_client.create_order(products=["FIBRE-1000", "STATIC-IP"])
    context = salesforce.get_order(order["orderId"])
    lines = salesforce.get_order_lines(order["orderId"])

    assert whmcs.find_order(context.client_id, order["orderId"], lines[0].product_id) is None
    created = whmcs.add_order(context.client_id, lines, order["orderId"])
    found = whmcs.find_order(context.client_id, order["orderId"], lines[0].product_id)
    assert found == created and len(created.service_ids) == 2
    assert whmcs.order_status(created.order_id) == "Pending"
    whmcs.accept_order(created.order_id)
    whmcs.accept_order(created.order_id)  # already Active: a no-op, not an error
    assert whmcs.order_status(created.order_id) == "Active"


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        ({"mode": "error", "message": "Client ID Not Found"}, PermanentError, "WHMCS_ERROR"),
        ({"mode": "http500"}, TransientError, "WHMCS_UNAVAILABLE"),
        ({"mode": "http503"}, TransientError, "WHMCS_UNAVAILABLE"),
        ({"mode": "limit"}, TransientError, "WHMCS_LIMIT"),
        ({"mode": "html"}, TransientError, "WHMCS_BAD_RESPONSE"),
        ({"mode": "truncated"}, TransientError, "WHMCS_BAD_RESPONSE"),
        ({"mode": "expire_session"}, PermanentError, "WHMCS_AUTH"),
        ({"mode": "timeout", "holdMs": 2500}, TransientError, "WHMCS_UNAVAILABLE"),
    ],
)
def test_whmcs_errors_are_mapped(whmcs, sandbox_client, fault, error, code):
    sandbox_client.fault("whmcs", "GetOrders", times=1, **fault)
    with pytest.raises(error) as caught:
        whmcs.order_status(1)
    assert caught.value.code == code
    assert caught.value.system == "whmcs"


def test_wrong_whmcs_credentials_are_permanent_and_not_echoed(sandbox):
    from dataclasses import replace

    settings = replace(WhmcsGateway().settings, secret="s3cr3t-value")
    with pytest.raises(PermanentError) as caught:
        WhmcsGateway(settings).order_status(1)
    assert caught.value.code == "WHMCS_AUTH"
    assert "s3cr3t-value" not in str(caught.value)


def test_php_style_encoding() -> None:
    lines = [OrderLine(1, 2, "a")]
    form = encode_form({"pid": [line.product_id for line in lines], "noemail": True, "x": None})
    assert form == [
        ("pid[0]", "1"),
        ("noemail", "1"),
    ]
    assert encode_form({"m": {"a": False}}) == [("m[a]", "0")]
    # base64 of a:1:{i:1;s:18:"8015g00000AbCdEAAV";}
    assert php_serialized_map({1: "8015g00000AbCdEAAV"}) == (
        "YToxOntpOjE7czoxODoiODAxNWcwMDAwMEFiQ2RFQUFWIjt9"
    )
