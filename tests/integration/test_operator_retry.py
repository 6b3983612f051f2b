"""Operator retry: a failed order's next run starts at the step that failed, repeats no side
effect that already happened, and continues the same order's history."""

from __future__ import annotations

import pytest

from notifier import read_snapshot
from tests.helpers import wait_for_terminal
from tests.workers import cli

pytestmark = pytest.mark.usefixtures("worker")


def fulfill(client, tokens, order_id: str, path: str = "fulfill"):
    return client.post(f"/api/orders/{order_id}/{path}", headers=tokens.headers(tokens.service()))


def status_writes(sandbox_client, order_id: str) -> list[str]:
    writes = sandbox_client.salesforce_order(order_id)["writes"]
    return [
        w["fields"]["Activation_Status__c"] for w in writes if "Activation_Status__c" in w["fields"]
    ]


def test_a_failed_provisioning_is_retried_from_provisioning(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    # WHMCS accepts the order but its module fails (the order is Active, its service Pending),
    # and the ModuleCreate that follows fails too.
    for action in ("AcceptOrder", "ModuleCreate"):
        sandbox_client.fault(
            "whmcs", action, mode="module_failure", times=1, message="Server unreachable"
        )
    fulfill(client, tokens, order["orderId"])
    failed = wait_for_terminal(order["orderId"])[-1]
    assert (failed["stage"], failed.get("step")) == ("failed", "provisioning"), failed
    assert "Server unreachable" in failed["error"]["message"]

    retried = fulfill(client, tokens, order["orderId"], "retry")

    assert retried.status_code == 202 and retried.json["run"] == 2
    history = wait_for_history_to_complete(order["orderId"])
    run2 = [e["stage"] for e in history if e["run"] == 2]
    assert run2 == ["queued", "provisioning", "completed"]  # activation is not repeated
    [whmcs] = sandbox_client.whmcs_orders(order["orderId"])  # AddOrder was not repeated
    assert [s["status"] for s in whmcs["services"]] == ["Active"]  # ModuleCreate ran
    assert status_writes(sandbox_client, order["orderId"]) == [
        "Activating",
        "Failed",
        "Activating",
        "Completed",
    ]


def test_a_failed_activation_is_retried_from_the_start(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault(
        "salesforce", "update", mode="error", errorCode="FIELD_CUSTOM_VALIDATION_EXCEPTION", times=1
    )
    fulfill(client, tokens, order["orderId"])
    assert wait_for_terminal(order["orderId"])[-1]["step"] == "activating"

    result = cli(_env(), "retry", order["orderId"])

    assert result.returncode == 0, result.stderr
    history = wait_for_history_to_complete(order["orderId"])
    assert [e["stage"] for e in history if e["run"] == 2] == [
        "queued",
        "activating",
        "provisioning",
        "completed",
    ]


def test_only_failed_orders_can_be_retried(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    fulfill(client, tokens, order["orderId"])
    wait_for_terminal(order["orderId"])
    response = fulfill(client, tokens, order["orderId"], "retry")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "NOT_FAILED"
    unknown = sandbox_client.create_order()
    assert fulfill(client, tokens, unknown["orderId"], "retry").status_code == 409
    customer = client.post(
        f"/api/orders/{order['orderId']}/retry",
        headers=tokens.headers(tokens.customer(order["accountId"])),
    )
    assert customer.status_code == 403


def test_a_browser_on_the_page_sees_the_new_run_in_the_same_history(client, tokens, sandbox_client):
    order = sandbox_client.create_order()
    sandbox_client.fault("whmcs", "AddOrder", mode="error", times=1)
    fulfill(client, tokens, order["orderId"])
    first_run = wait_for_terminal(order["orderId"])
    fulfill(client, tokens, order["orderId"], "retry")
    history = wait_for_history_to_complete(order["orderId"])
    assert history[: len(first_run)] == first_run  # the same stream, continued
    assert len(sandbox_client.whmcs_orders(order["orderId"])) == 1


def wait_for_history_to_complete(order_id: str) -> list[dict]:
    from tests.integration.test_stream import wait_until

    wait_until(lambda: read_snapshot(order_id).body["stage"] in ("completed",), 30)
    return read_snapshot(order_id).body["history"]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
