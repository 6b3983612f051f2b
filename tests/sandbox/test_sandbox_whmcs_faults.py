"""WHMCS fault switches: each mode as a `requests` client sees it."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests


def _add_order(whmcs: Any, client_id: str) -> requests.Response:
    return whmcs.post(
        "AddOrder", ("pid[0]", "1"), clientid=client_id, paymentmethod="banktransfer", noinvoice="1"
    )


@pytest.fixture
def client_id(whmcs: Any) -> str:
    return whmcs.call("AddClient", firstname="Grace", lastname="Hopper", email="grace@example.com")[
        "clientid"
    ]


def test_error_mode_default_and_custom_messages(whmcs: Any, control: Any, client_id: str) -> None:
    control.fault("whmcs", action="addorder", mode="error", times=1)
    control.fault("whmcs", action="AddOrder", mode="error", message="Custom failure", times=1)
    first, second = _add_order(whmcs, client_id), _add_order(whmcs, client_id)
    assert first.status_code == 200
    assert first.json() == {
        "result": "error",
        "message": "Unable to add order when client status is Closed",
    }
    assert second.json() == {"result": "error", "message": "Custom failure"}
    assert control.whmcs_orders() == []  # errors changed nothing
    assert _add_order(whmcs, client_id).json()["result"] == "success"


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "json_body"),
    [
        ("http500", 500, "text/html", None),
        ("http503", 503, "text/html", None),
        ("limit", 429, "application/json", {"result": "error", "message": "Too many requests"}),
        (
            "expire_session",
            403,
            "application/json",
            {"result": "error", "message": "Authentication Failed"},
        ),
        ("html", 200, "text/html", None),
    ],
)
def test_transport_modes(
    whmcs: Any,
    control: Any,
    client_id: str,
    mode: str,
    status: int,
    content_type: str,
    json_body: Any,
) -> None:
    control.fault("whmcs", action="AddOrder", mode=mode, times=1)
    response = _add_order(whmcs, client_id)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    if json_body is None:
        assert response.text.lstrip().startswith("<!DOCTYPE html>")
    else:
        assert response.json() == json_body
    assert control.whmcs_orders() == []
    assert _add_order(whmcs, client_id).json()["result"] == "success"


def test_truncated_mode_is_json_that_does_not_parse(whmcs: Any, control: Any) -> None:
    control.fault("whmcs", action="GetOrders", mode="truncated", times=1)
    response = whmcs.post("GetOrders")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        response.json()


def test_timeout_commits_the_order_then_withholds_the_answer(
    whmcs: Any, control: Any, client_id: str
) -> None:
    control.fault("whmcs", action="AddOrder", mode="timeout", holdMs=1000, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        whmcs.http.post(
            whmcs.url,
            data={
                **whmcs.auth,
                "action": "AddOrder",
                "clientid": client_id,
                "paymentmethod": "banktransfer",
                "pid[0]": "1",
                "customfields[0]": "YToxOntpOjE7czoxODoiODAxMDAwMDAwMDAwMDAxQUFBIjt9",
            },
            timeout=0.3,
        )
    # The order exists although its creator never heard back: find it by the tag.
    assert len(control.whmcs_orders("801000000000001AAA")) == 1


def test_latency_and_wildcard(whmcs: Any, control: Any) -> None:
    control.fault("whmcs", action="*", latencyMs=250, times=1)
    started = time.monotonic()
    assert whmcs.call("GetOrderStatuses")["result"] == "success"
    assert time.monotonic() - started >= 0.25
    control.fault("whmcs", action="*", mode="http503")
    assert whmcs.post("GetProducts").status_code == 503
    assert whmcs.post("Nonsense").status_code == 503
    assert control.http.delete(control.url("whmcs", "/faults")).status_code == 204
    assert whmcs.post("GetProducts").status_code == 200


def test_module_failure_accepts_the_order_but_leaves_services_pending(
    whmcs: Any, control: Any, client_id: str
) -> None:
    body = _add_order(whmcs, client_id).json()
    control.fault("whmcs", action="AcceptOrder", mode="module_failure", times=1)
    failed = whmcs.call("AcceptOrder", orderid=body["orderid"], autosetup="1")
    assert failed["result"] == "error" and "Module Create Failed" in failed["message"]
    order = whmcs.call("GetOrders", id=body["orderid"])["orders"]["order"][0]
    assert order["status"] == "Active"
    assert order["lineitems"]["lineitem"][0]["status"] == "Pending"
    assert whmcs.call("ModuleCreate", serviceid=body["serviceids"]) == {"result": "success"}


def test_faults_are_listed_and_validated(control: Any) -> None:
    stored = control.fault(
        "whmcs", action="getclientsproducts", mode="error", times=3, latencyMs=10
    )
    assert stored["action"] == "GetClientsProducts" and stored["remaining"] == 3
    assert control.http.get(control.url("whmcs", "/faults")).json() == [stored]
    for body in (
        {"action": "FlyToTheMoon", "mode": "error"},
        {"action": "GetOrders", "mode": "module_failure"},
        {"action": "GetOrders", "mode": "error", "holdMs": "soon"},
        {"mode": "error"},
    ):
        response = control.http.post(control.url("whmcs", "/faults"), json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "INVALID_FAULT"
