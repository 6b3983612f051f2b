"""The Salesforce emulator's Composite resource, through simple-salesforce's `restful` and raw
HTTPS: one API call, subrequests in order, all-or-none rollback, errors and faults."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from simple_salesforce import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    format_soql,
)

from sandbox import ids

V = "/services/data/v59.0"
HALTED = {
    "errorCode": "PROCESSING_HALTED",
    "message": "The transaction was rolled back since another operation in the same "
    "transaction failed.",
}


def patch(order_id: str, ref: str = "activate", **fields: Any) -> dict[str, Any]:
    body = fields or {"Activation_Status__c": "Activating"}
    return {
        "method": "PATCH",
        "url": f"{V}/sobjects/Order/{order_id}",
        "referenceId": ref,
        "body": body,
    }


def query(soql: str, ref: str = "read") -> dict[str, Any]:
    return {"method": "GET", "url": f"{V}/query?{urlencode({'q': soql})}", "referenceId": ref}


def order_read(order_id: str) -> str:
    return format_soql(
        "SELECT Id, Activation_Status__c, Account.WHMCS_Client_Id__c, "
        "(SELECT Quantity, Product2.Name FROM OrderItems) FROM Order WHERE Id = {}",
        order_id,
    )


def composite(sf: Any, *subrequests: dict[str, Any], all_or_none: bool = True) -> list[Any]:
    body = {"allOrNone": all_or_none, "compositeRequest": list(subrequests)}
    return list(sf.restful("composite", method="POST", json=body)["compositeResponse"])


def statuses(results: list[dict[str, Any]]) -> list[int]:
    return [r["httpStatusCode"] for r in results]


def usage(control: Any) -> int:
    return int(control.http.get(control.url("salesforce", "/usage")).json()["apiCalls"])


def test_a_composite_runs_its_subrequests_in_order_as_one_api_call(sf: Any, control: Any) -> None:
    created = control.new_order(products=["FIBRE-100", {"code": "ROUTER", "quantity": 2}])
    order_id = created["orderId"]
    before = usage(control)

    results = composite(
        sf,
        patch(order_id),
        {
            "method": "GET",
            "url": f"{V}/sobjects/Order/{order_id}?fields=Activation_Status__c",
            "referenceId": "record",
        },
        query(order_read(order_id)),
    )

    assert usage(control) == before + 1
    assert sf.api_usage["api-usage"].used == before + 1  # what Sforce-Limit-Info said
    assert [r["referenceId"] for r in results] == ["activate", "record", "read"]
    assert statuses(results) == [204, 200, 200]
    assert results[0]["body"] is None and results[0]["httpHeaders"] == {}
    assert results[1]["body"]["Activation_Status__c"] == "Activating"  # after the PATCH
    [record] = results[2]["body"]["records"]
    assert record["Activation_Status__c"] == "Activating"
    assert record["Account"]["WHMCS_Client_Id__c"].isdigit()
    items = record["OrderItems"]["records"]
    assert [(i["Product2"]["Name"], i["Quantity"]) for i in items] == [
        ("Fibre 100 Mbps", 1.0),
        ("Wi-Fi 6 router", 2.0),
    ]
    writes = control.order(order_id)["writes"]
    assert [w["fields"] for w in writes] == [{"Activation_Status__c": "Activating"}]


def test_a_create_subrequest_answers_201_with_its_location(sf: Any, control: Any) -> None:
    account_id = control.new_order()["accountId"]
    body = {"AccountId": account_id, "Status": "Draft", "EffectiveDate": "2026-01-15"}
    [result] = composite(
        sf, {"method": "POST", "url": f"{V}/sobjects/Order/", "referenceId": "new", "body": body}
    )
    assert result["httpStatusCode"] == 201
    assert result["body"]["success"] is True
    new_id = result["body"]["id"]
    assert result["httpHeaders"] == {"Location": f"{V}/sobjects/Order/{new_id}"}
    assert sf.Order.get(new_id)["AccountId"] == account_id


def test_all_or_none_rolls_back_every_write_and_halts_the_rest(sf: Any, control: Any) -> None:
    created = control.new_order()
    order_id, account_id = created["orderId"], created["accountId"]
    other = control.new_order()["orderId"]
    new_order = {"AccountId": account_id, "Status": "Draft", "EffectiveDate": "2026-01-15"}
    before = usage(control)

    results = composite(
        sf,
        patch(order_id),
        {"method": "POST", "url": f"{V}/sobjects/Order", "referenceId": "new", "body": new_order},
        query("SELECT Id, No_Such_Field__c FROM Order"),
        patch(other, "later"),
    )

    assert statuses(results) == [400, 400, 400, 400]
    assert results[0]["body"] == [HALTED] == results[1]["body"] == results[3]["body"]
    assert results[2]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert usage(control) == before + 1
    for untouched in (order_id, other):
        shown = control.order(untouched)
        assert shown["writes"] == [] and shown["record"]["Activation_Status__c"] is None
    orders = sf.query(format_soql("SELECT Id FROM Order WHERE AccountId = {}", account_id))
    assert [r["Id"] for r in orders["records"]] == [order_id]  # the created order is gone


def test_without_all_or_none_each_subrequest_stands_alone(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    missing = ids.new_id("Order")
    results = composite(
        sf, patch(missing, "missing"), patch(order_id), query(order_read(order_id)),
        all_or_none=False,
    )  # fmt: skip
    assert statuses(results) == [404, 204, 200]
    assert results[0]["body"][0]["errorCode"] == "NOT_FOUND"
    assert results[2]["body"]["records"][0]["Activation_Status__c"] == "Activating"
    assert control.order(order_id)["record"]["Activation_Status__c"] == "Activating"


@pytest.mark.parametrize(
    ("subrequest", "status", "code"),
    [
        ({"method": "GET", "url": f"{V}/sobjects/Order/801notanid"}, 400, "MALFORMED_ID"),
        ({"method": "DELETE", "url": f"{V}/sobjects/Order/{'8' * 18}"}, 405, "METHOD_NOT_ALLOWED"),
        ({"method": "GET", "url": f"{V}/query"}, 400, "MALFORMED_QUERY"),
        ({"method": "GET", "url": f"{V}/query?q=SELEC"}, 400, "MALFORMED_QUERY"),
        ({"method": "GET", "url": f"{V}/sobjects/Contract/{'8' * 18}"}, 404, "NOT_FOUND"),
        ({"method": "POST", "url": f"{V}/composite"}, 404, "NOT_FOUND"),
        ({"method": "GET", "url": "/__sandbox/usage"}, 404, "NOT_FOUND"),
        (
            {"method": "GET", "url": "/services/data/latest/query?q=SELECT+Id+FROM+Order"},
            404,
            "NOT_FOUND",
        ),
        (
            {"method": "PATCH", "url": f"{V}/sobjects/Order/ORDER", "body": [1]},
            400,
            "JSON_PARSER_ERROR",
        ),
    ],
)
def test_a_subrequest_fails_as_the_same_call_alone_would(
    sf: Any, control: Any, subrequest: dict[str, Any], status: int, code: str
) -> None:
    order_id = control.new_order()["orderId"]
    subrequest = {**subrequest, "url": subrequest["url"].replace("ORDER", order_id)}
    [result] = composite(sf, {**subrequest, "referenceId": "only"})
    assert (result["httpStatusCode"], result["body"][0]["errorCode"]) == (status, code)
    assert control.order(order_id)["writes"] == []


def _too_many(order_id: str) -> dict[str, Any]:
    return {"compositeRequest": [patch(order_id, f"r{i}") for i in range(26)]}


def _too_many_queries(order_id: str) -> dict[str, Any]:
    return {
        "compositeRequest": [patch(order_id)]
        + [query(order_read(order_id), f"q{i}") for i in range(6)]
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", "JSON_PARSER_ERROR"),
        ([], "JSON_PARSER_ERROR"),
        ({}, "JSON_PARSER_ERROR"),
        ({"compositeRequest": []}, "JSON_PARSER_ERROR"),
        ({"compositeRequest": {"a": 1}}, "JSON_PARSER_ERROR"),
        ({"compositeRequest": ["PATCH"]}, "JSON_PARSER_ERROR"),
        ({"allOrNone": "yes", "compositeRequest": [{"PATCH": 1}]}, "JSON_PARSER_ERROR"),
        ({"allOrNone": True, "batchRequests": []}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [{**patch(o), "referenceId": None}]}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [{**patch(o), "referenceId": "a-b"}]}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [patch(o, "same"), patch(o, "same")]}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [{**patch(o), "method": "patch"}]}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [{**patch(o), "method": None}]}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [{**patch(o), "url": 7}]}, "JSON_PARSER_ERROR"),
        (lambda o: {"compositeRequest": [{**patch(o), "colour": "red"}]}, "JSON_PARSER_ERROR"),
        (
            lambda o: {"compositeRequest": [{**patch(o), "httpHeaders": {"Authorization": "x"}}]},
            "JSON_PARSER_ERROR",
        ),
        (lambda o: {"compositeRequest": [{**patch(o), "httpHeaders": ["x"]}]}, "JSON_PARSER_ERROR"),
        (_too_many, "LIMIT_EXCEEDED"),
        (_too_many_queries, "LIMIT_EXCEEDED"),
        (
            lambda o: {"compositeRequest": [patch(o), patch(o, "b", Description="@{activate.id}")]},
            "NOT_SUPPORTED",
        ),
    ],
)
def test_a_malformed_composite_is_refused_whole_and_runs_nothing(
    sandbox: Any, https: Any, get_token: Any, control: Any, body: Any, code: str
) -> None:
    order_id = control.new_order()["orderId"]
    body = body(order_id) if callable(body) else body
    response = https.post(
        f"{sandbox.salesforce_url}{V}/composite",
        data=body if isinstance(body, str) else json.dumps(body),
        headers={
            "Authorization": f"Bearer {get_token()['access_token']}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    [error] = response.json()
    assert error["errorCode"] == code and error["message"]
    assert control.order(order_id)["writes"] == []


def test_the_composite_route_wants_post_and_a_session(sandbox: Any, https: Any, sf: Any) -> None:
    url = f"{sandbox.salesforce_url}{V}/composite"
    assert https.post(url, json={"compositeRequest": []}).status_code == 401
    wrong = https.get(url, headers=sf.headers)
    assert wrong.status_code == 405 and wrong.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


# --- faults ----------------------------------------------------------------------------------


def test_a_fault_on_composite_hits_the_whole_call_like_any_call(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    control.fault(
        "salesforce", action="composite", mode="error", errorCode="UNABLE_TO_LOCK_ROW", times=1
    )
    with pytest.raises(SalesforceMalformedRequest) as refused:
        composite(sf, patch(order_id))
    content: Any = refused.value.content
    assert content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert control.order(order_id)["writes"] == []
    assert statuses(composite(sf, patch(order_id))) == [204]  # times=1: once only


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("http500", SalesforceGeneralError),
        ("http503", SalesforceGeneralError),
        ("limit", SalesforceRefusedRequest),
        ("expire_session", SalesforceExpiredSession),
    ],
)
def test_composite_fault_modes(sf: Any, control: Any, mode: str, error: type) -> None:
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="composite", mode=mode, times=1)
    with pytest.raises(error):
        composite(sf, patch(order_id))
    assert control.order(order_id)["writes"] == []


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"mode": "error", "errorCode": "UNABLE_TO_LOCK_ROW"}, 400, "UNABLE_TO_LOCK_ROW"),
        ({"mode": "http500"}, 500, "UNKNOWN_EXCEPTION"),
    ],
)
def test_an_error_fault_on_a_subrequests_action_is_that_subrequests_answer(
    sf: Any, control: Any, fault: dict[str, Any], status: int, code: str
) -> None:
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="update", times=1, **fault)
    results = composite(sf, patch(order_id), query(order_read(order_id)))
    assert statuses(results) == [status, 400]
    assert results[0]["body"][0]["errorCode"] == code
    assert results[1]["body"] == [HALTED]
    assert control.order(order_id)["writes"] == []
    assert statuses(composite(sf, patch(order_id))) == [204]  # consumed by the subrequest


def test_a_query_fault_after_a_write_rolls_the_write_back(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="query", mode="error", errorCode="QUERY_TIMEOUT", times=1)
    results = composite(sf, patch(order_id), query(order_read(order_id)))
    assert statuses(results) == [400, 400]
    assert (results[0]["body"], results[1]["body"][0]["errorCode"]) == ([HALTED], "QUERY_TIMEOUT")
    assert control.order(order_id)["writes"] == []


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("http503", SalesforceGeneralError),
        ("limit", SalesforceRefusedRequest),
        ("expire_session", SalesforceExpiredSession),
        ("html", ValueError),
        ("truncated", ValueError),
    ],
)
def test_other_fault_modes_on_a_subrequests_action_hit_the_whole_call(
    sf: Any, control: Any, mode: str, error: type
) -> None:
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="query", mode=mode, times=1)
    with pytest.raises(error):
        composite(sf, patch(order_id), query(order_read(order_id)))
    assert control.order(order_id)["writes"] == []  # refused before anything ran


def test_a_garbled_answer_replaces_the_whole_composite_answer(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="update", mode="garbled", times=1)
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [patch(order_id)]})
    assert "compositeResponse" not in answer
    assert control.order(order_id)["writes"] == []


def test_latency_adds_up_once_per_fault_and_wildcards_once_per_call(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    calls = [patch(order_id), query(order_read(order_id), "a"), query(order_read(order_id), "b")]
    control.fault("salesforce", action="*", latencyMs=250)
    started = time.monotonic()
    composite(sf, *calls)
    # `*` is one delay for the one call, not one per subrequest (that would be 1 s).
    assert 0.25 <= time.monotonic() - started < 0.75
    control.fault("salesforce", action="query", latencyMs=300, times=1)
    control.fault("salesforce", action="composite", latencyMs=100, times=1)
    started = time.monotonic()
    composite(sf, *calls)
    assert time.monotonic() - started >= 0.65  # 250 + 300 (the first query) + 100


def test_a_timeout_on_a_subrequest_commits_then_withholds_the_answer(
    make_sf: Any, control: Any
) -> None:
    impatient = make_sf(timeout=0.3)
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="update", mode="timeout", holdMs=1000, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        composite(impatient, patch(order_id))
    assert control.order(order_id)["record"]["Activation_Status__c"] == "Activating"


def test_composite_is_a_fault_action(control: Any) -> None:
    fault = control.fault("salesforce", action="Composite", latencyMs=1)
    assert fault["action"] == "composite"
