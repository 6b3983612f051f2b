"""The fulfillment chain end to end: real worker, real Redis, the sandbox over HTTP(S)."""

from __future__ import annotations

import pytest

from fulfillment import ports, steps
from fulfillment.plan import Job
from notifier import normalize_order_id, read_snapshot
from tests.helpers import wait_for_terminal

pytestmark = pytest.mark.usefixtures("worker")


def trigger(client, tokens, order_id: str):
    return client.post(f"/api/orders/{order_id}/fulfill", headers=tokens.headers(tokens.service()))


def stages(events) -> list[str]:
    return [event["stage"] for event in events]


def status_writes(record) -> list[str]:
    return [
        w["fields"]["Activation_Status__c"]
        for w in record["writes"]
        if "Activation_Status__c" in w["fields"]
    ]


def test_an_order_is_activated_provisioned_and_completed(client, tokens, sandbox_client):
    order = sandbox_client.create_order(products=["FIBRE-500", "STATIC-IP"])

    response = trigger(client, tokens, order["orderId"])

    assert response.status_code == 202
    assert response.json["stage"] == "queued" and response.json["taskId"]
    events = wait_for_terminal(order["orderId"])
    assert stages(events) == ["queued", "activating", "provisioning", "completed"]
    [whmcs_order] = sandbox_client.whmcs_orders(order["orderId"])
    assert whmcs_order["status"] == "Active"
    assert [s["status"] for s in whmcs_order["services"]] == ["Active", "Active"]
    completed = events[-1]
    assert completed["status"] == "Completed"
    assert completed["whmcs"] == {
        "orderId": whmcs_order["id"],
        "serviceIds": [s["id"] for s in whmcs_order["services"]],
    }
    record = sandbox_client.salesforce_order(order["orderId"])
    assert status_writes(record) == ["Activating", "Completed"]
    assert record["record"]["WHMCS_Order_Id__c"] == str(whmcs_order["id"])
    assert [e["status"] for e in events] == [None, "Activating", "Activating", "Completed"]


def test_a_permanent_whmcs_error_fails_the_order_with_the_reason(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault("whmcs", "AddOrder", mode="error", message="Client ID Not Found")

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert stages(events) == ["queued", "activating", "provisioning", "failed"]
    failed = events[-1]
    assert failed["status"] == "Failed"
    assert failed["error"]["code"] == "WHMCS_ERROR"
    assert "Client ID Not Found" in failed["error"]["message"]
    assert failed["error"]["retryable"] is False
    record = sandbox_client.salesforce_order(order["orderId"])
    assert status_writes(record) == ["Activating", "Failed"]
    assert "Client ID Not Found" in record["record"]["Activation_Error__c"]
    assert sandbox_client.whmcs_orders(order["orderId"]) == []


def test_two_503s_are_retried_then_the_order_completes(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault("whmcs", "AddOrder", mode="http503", times=2)

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert stages(events) == [
        "queued", "activating", "provisioning", "retrying", "retrying", "completed",
    ]  # fmt: skip
    retries = [e for e in events if e["stage"] == "retrying"]
    assert [r["attempt"] for r in retries] == [2, 3]
    assert all(r["step"] == "provisioning" and r["nextRetryAt"] for r in retries)
    assert "WHMCS" in retries[0]["message"]
    assert len(sandbox_client.whmcs_orders(order["orderId"])) == 1


def test_retries_run_out_and_the_order_fails_as_retryable(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault("whmcs", "AddOrder", mode="http500")

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert stages(events).count("retrying") == 3  # FULFILLMENT_MAX_ATTEMPTS=4 in tests
    assert events[-1]["stage"] == "failed"
    assert events[-1]["error"] == {
        "code": "WHMCS_UNAVAILABLE",
        "message": "WHMCS AddOrder answered HTTP 500",
        "retryable": True,
    }


def test_a_lost_addorder_response_does_not_create_a_second_order(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    # WHMCS creates the order, then the answer never arrives in time (client timeout: 2 s).
    sandbox_client.fault("whmcs", "AddOrder", mode="timeout", times=1, holdMs=3000)

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert events[-1]["stage"] == "completed"
    assert "retrying" in stages(events)
    [whmcs_order] = sandbox_client.whmcs_orders(order["orderId"])
    assert events[-1]["whmcs"]["orderId"] == whmcs_order["id"]


def test_a_repeated_trigger_is_a_duplicate_and_a_repeated_step_changes_nothing(
    client, tokens, sandbox_client
):
    order = sandbox_client.create_order()
    first = trigger(client, tokens, order["orderId"])
    again = trigger(client, tokens, order["orderId"])
    assert again.status_code == 200
    assert again.json["duplicate"] is True
    assert again.json["taskId"] == first.json["taskId"]
    events = wait_for_terminal(order["orderId"])
    after = trigger(client, tokens, order["orderId"])
    assert after.status_code == 200 and after.json["stage"] == "completed"

    # A redelivered provisioning step of the same run finds the finished order and stops.
    run = events[-1]["run"]
    with pytest.raises(steps.StaleMessage):
        steps.provision(Job(order["orderId"], run), ports.live())
    assert len(sandbox_client.whmcs_orders(order["orderId"])) == 1
    assert len(read_snapshot(order["orderId"]).body["history"]) == len(events)


def test_provisioning_twice_in_flight_creates_one_whmcs_order(
    redis_client, sandbox, sandbox_client
):
    from notifier import publish

    order = sandbox_client.create_order()
    publish(order["orderId"], {"stage": "queued"})
    steps.activate(Job(order["orderId"], 1), ports.live())
    steps.provision(Job(order["orderId"], 1), ports.live())
    # A redelivery of the same step:
    steps.provision(Job(order["orderId"], 1, attempt=2), ports.live())
    assert len(sandbox_client.whmcs_orders(order["orderId"])) == 1
    assert stages(read_snapshot(order["orderId"]).body["history"]) == [
        "queued", "activating", "provisioning",
    ]  # fmt: skip


def test_an_expired_salesforce_session_is_renewed(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault("salesforce", "update", mode="expire_session", times=1)

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert stages(events) == ["queued", "activating", "provisioning", "completed"]
    assert status_writes(sandbox_client.salesforce_order(order["orderId"])) == [
        "Activating", "Completed",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"mode": "limit"}, "SALESFORCE_LIMIT"),
        ({"mode": "error", "errorCode": "UNABLE_TO_LOCK_ROW"}, "SALESFORCE_LOCKED"),
    ],
)
def test_salesforce_limits_and_row_locks_are_retried(client, tokens, sandbox_client, fault, code):
    order = sandbox_client.create_order()
    sandbox_client.fault("salesforce", "update", times=1, **fault)

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert events[-1]["stage"] == "completed"
    [retry] = [e for e in events if e["stage"] == "retrying"]
    assert code in retry["message"]
    assert retry["step"] == "activating"


def test_an_order_salesforce_does_not_know_is_404(client, tokens):
    response = trigger(client, tokens, normalize_order_id("801000000000404"))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "ORDER_NOT_FOUND"


@pytest.mark.parametrize(
    ("system", "action", "mode", "ending", "code"),
    [
        ("whmcs", "AddOrder", "html", "completed", None),
        ("whmcs", "AddOrder", "truncated", "completed", None),
        ("whmcs", "AddOrder", "garbled", "failed", "WHMCS_BAD_RESPONSE"),
        # Asked only by a repeated provisioning (AddOrder's answer lost first).
        ("whmcs", "AddOrder:timeout,GetOrders", "garbled", "failed", "WHMCS_BAD_RESPONSE"),
        (
            "whmcs",
            "AddOrder:timeout,GetClientsProducts",
            "garbled",
            "failed",
            "WHMCS_BAD_RESPONSE",
        ),
        ("whmcs", "AcceptOrder", "html", "completed", None),
        ("salesforce", "query", "html", "completed", None),
        ("salesforce", "query", "truncated", "completed", None),
        ("salesforce", "query", "garbled", "failed", "SALESFORCE_BAD_RESPONSE"),
        ("salesforce", "update", "http503", "completed", None),
    ],
)
def test_malformed_vendor_answers_never_leave_an_order_stuck(
    client, tokens, sandbox_client, system, action, mode, ending, code
):
    order = sandbox_client.create_order()
    # Seen once before (its owner recorded), so the trigger asks Salesforce nothing and the
    # fault meets the pipeline's own read.
    seen = client.get(f"/api/orders/{order['orderId']}", headers=tokens.headers(tokens.service()))
    assert seen.status_code == 200
    *before, last = action.split(",")  # faults that lead to the one under test, in turn
    for earlier in before:
        name, _, earlier_mode = earlier.partition(":")
        sandbox_client.fault(system, name, mode=earlier_mode, times=1, holdMs=2500)
    sandbox_client.fault(system, last, mode=mode, times=1)

    trigger(client, tokens, order["orderId"])

    events = wait_for_terminal(order["orderId"])
    assert events[-1]["stage"] == ending
    if code:
        assert events[-1]["error"]["code"] == code
        assert events[-1]["error"]["retryable"] is False
    assert len(sandbox_client.whmcs_orders(order["orderId"])) <= 1
