"""Salesforce fault switches, seen through simple-salesforce as the pipeline would see them."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

QUERY = "SELECT Id FROM Order"


def test_error_fault_with_times_then_recovers(sf: Any, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    fault = control.fault(
        "salesforce", action="update", mode="error", errorCode="UNABLE_TO_LOCK_ROW", times=2
    )
    assert fault["id"] and fault["remaining"] == 2
    for _ in range(2):
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Order.update(order_id, {"Activation_Status__c": "Activating"})
        assert exc.value.status == 400
        assert exc.value.content == [
            {
                "message": "unable to obtain exclusive access to this record",
                "errorCode": "UNABLE_TO_LOCK_ROW",
            }
        ]
    sf.Order.get(order_id)  # other actions are untouched
    assert sf.Order.update(order_id, {"Activation_Status__c": "Activating"}) == 204
    # Faulted requests changed nothing: only the third PATCH is in the log.
    assert len(control.order(order_id)["writes"]) == 1
    listed = control.http.get(control.url("salesforce", "/faults")).json()
    assert listed[0]["remaining"] == 0


def test_error_fault_defaults_and_custom_message(sf: Any, control: Any) -> None:
    control.fault("salesforce", action="query", mode="error", times=1)
    with pytest.raises(SalesforceMalformedRequest) as default:
        sf.query(QUERY)
    assert default.value.content[0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    control.fault(
        "salesforce",
        action="query",
        mode="error",
        errorCode="ENTITY_IS_LOCKED",
        message="locked!",
        times=1,
    )
    with pytest.raises(SalesforceMalformedRequest) as custom:
        sf.query(QUERY)
    assert custom.value.content == [{"message": "locked!", "errorCode": "ENTITY_IS_LOCKED"}]


def test_http500_http503_and_limit(sf: Any, control: Any) -> None:
    control.fault("salesforce", action="query", mode="http500", times=1)
    control.fault("salesforce", action="query", mode="http503", times=1)
    control.fault("salesforce", action="query", mode="limit", times=1)
    with pytest.raises(SalesforceGeneralError) as server_error:
        sf.query(QUERY)
    assert server_error.value.status == 500
    assert server_error.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.query(QUERY)
    assert unavailable.value.status == 503
    assert (
        isinstance(unavailable.value.content, str)
        and "Service Unavailable" in unavailable.value.content
    )
    with pytest.raises(SalesforceRefusedRequest) as limited:
        sf.query(QUERY)
    assert limited.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert sf.query(QUERY)["done"] is True


def test_expire_session_invalidates_earlier_tokens_only(
    sf: Any, make_sf: Any, control: Any
) -> None:
    other = make_sf()
    control.fault("salesforce", action="get", mode="expire_session", times=1)
    order_id = control.new_order()["orderId"]
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.Order.get(order_id)
    assert exc.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    with pytest.raises(SalesforceExpiredSession):
        other.query(QUERY)  # a token issued before the fault is gone too
    fresh = make_sf()
    assert fresh.Order.get(order_id)["Id"] == order_id


def test_wildcard_covers_rest_calls_but_not_the_token_endpoint(
    sf: Any, make_sf: Any, control: Any
) -> None:
    control.fault("salesforce", action="*", mode="http503")
    with pytest.raises(SalesforceGeneralError):
        sf.query(QUERY)
    make_sf()  # still able to log in
    assert control.http.delete(control.url("salesforce", "/faults")).status_code == 204
    assert control.http.get(control.url("salesforce", "/faults")).json() == []
    assert sf.query(QUERY)["done"] is True


def test_token_faults(sandbox: Any, https: Any, control: Any) -> None:
    creds = sandbox.credentials["salesforce"]
    url = f"{sandbox.salesforce_url}/services/oauth2/token"
    form = {"grant_type": "client_credentials"}
    auth = (creds["clientId"], creds["clientSecret"])
    control.fault("salesforce", action="token", mode="error", times=1)
    control.fault("salesforce", action="token", mode="http500", times=1)
    refused = https.post(url, data=form, auth=auth)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert https.post(url, data=form, auth=auth).status_code == 500
    assert https.post(url, data=form, auth=auth).status_code == 200


def test_html_and_truncated_bodies_are_not_json(sf: Any, control: Any) -> None:
    control.fault("salesforce", action="query", mode="html", times=1)
    control.fault("salesforce", action="query", mode="truncated", times=1)
    with pytest.raises(ValueError, match=r"Expecting|Extra|Unterminated"):
        sf.query(QUERY)
    with pytest.raises(ValueError, match=r"Expecting|Extra|Unterminated"):
        sf.query(QUERY)


def test_latency_delays_matching_requests(sf: Any, control: Any) -> None:
    control.fault("salesforce", action="query", latencyMs=300, times=1)
    started = time.monotonic()
    sf.query(QUERY)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    sf.query(QUERY)
    assert time.monotonic() - started < 0.3


def test_timeout_commits_then_withholds_the_answer(make_sf: Any, control: Any) -> None:
    impatient = make_sf(timeout=0.3)
    order_id = control.new_order()["orderId"]
    control.fault("salesforce", action="update", mode="timeout", holdMs=1000, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.Order.update(order_id, {"Activation_Status__c": "Completed"})
    # The lost response's change happened anyway.
    record = control.order(order_id)["record"]
    assert record["Activation_Status__c"] == "Completed"
    assert [w["fields"] for w in control.order(order_id)["writes"]] == [
        {"Activation_Status__c": "Completed"}
    ]


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"action": "delete", "mode": "error"},
        {"action": "get", "mode": "explode"},
        {"action": "get", "mode": "error", "times": 0},
        {"action": "get", "mode": "error", "times": "2"},
        {"action": "get", "mode": "error", "times": True},
        {"action": "get", "latencyMs": -5},
        {"action": "get"},
        {"action": "get", "mode": "error", "colour": "red"},
        {"action": "token", "mode": "expire_session"},
        {"action": "get", "mode": "error", "errorCode": 7},
    ],
)
def test_bad_fault_bodies_are_rejected(control: Any, body: Any) -> None:
    response = control.http.post(control.url("salesforce", "/faults"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("INVALID_FAULT", "BAD_JSON")
    assert control.http.get(control.url("salesforce", "/faults")).json() == []
