"""What the processes log: JSON lines, with ids and outcomes, and never a token."""

from __future__ import annotations

import json
import logging

import requests

from tests.helpers import wait_for_terminal
from tests.sse import web_process


def test_the_web_process_logs_json_without_tokens(sandbox, tokens, order, tmp_path, client):
    log_file = tmp_path / "web.log"
    customer = tokens.customer(order["accountId"])
    ticket = client.post(
        f"/api/orders/{order['orderId']}/stream-ticket", headers=tokens.headers(customer)
    ).json["ticket"]
    with web_process(log_file=log_file, WEB_ACCESS_LOG="-", SSE_HEARTBEAT_SECONDS="1") as web:
        url = f"{web.url}/api/orders/{order['orderId']}"
        requests.get(url, headers={"Authorization": "Bearer not-a-jwt"}, timeout=5)
        requests.get(f"{url}?access_token={customer}", timeout=5)
        requests.get(url, headers=tokens.headers(customer), timeout=5)
        with requests.get(f"{url}/events?ticket={ticket}", stream=True, timeout=5) as stream:
            assert stream.status_code == 200
            next(stream.iter_lines())

    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    text = log_file.read_text()
    assert customer not in text and ticket not in text
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert {(a["method"], a["path"], a["status"]) for a in access} >= {
        ("GET", f"/api/orders/{order['orderId']}", 401),
        ("GET", f"/api/orders/{order['orderId']}", 200),
        ("GET", f"/api/orders/{order['orderId']}/events", 200),
    }
    assert all("?" not in a["path"] for a in access)


def test_an_empty_web_access_log_turns_access_lines_off(order, tmp_path):
    log_file = tmp_path / "web.log"
    with web_process(log_file=log_file, WEB_ACCESS_LOG="") as web:
        assert requests.get(f"{web.url}/api/orders/{order['orderId']}", timeout=5).status_code
        assert requests.get(f"{web.url}/healthz", timeout=5).status_code == 200

    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    assert lines, "the web process logged nothing at all"
    assert [line for line in lines if line["logger"] == "gunicorn.access"] == []


def test_worker_steps_log_their_order_task_step_outcome_and_duration(
    client, tokens, sandbox_client, worker, caplog
):
    caplog.set_level(logging.INFO, logger="tasks")
    order = sandbox_client.create_order()
    client.post(f"/api/orders/{order['orderId']}/fulfill", headers=tokens.headers(tokens.service()))
    wait_for_terminal(order["orderId"])

    steps = [
        r
        for r in caplog.records
        if r.getMessage() == "step finished" and r.order_id == order["orderId"]
    ]
    assert {r.step for r in steps} >= {"activating", "provisioning"}
    assert all(r.task_id and r.outcome == "ok" and r.duration_ms >= 0 for r in steps)
