"""`POST /api/client-events`: the pages' connection reports become counters; bounded and
rate-limited per credential, counts only."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client import REGISTRY

import settings


def counted(reason: str) -> float:
    return REGISTRY.get_sample_value("fulfillment_client_events_total", {"reason": reason}) or 0.0


def beacon(client, body: object, **kwargs):
    # sendBeacon with a Blob of type application/json: a plain POST, no custom headers.
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/client-events", data=data, content_type="application/json", **kwargs)


@pytest.fixture
def customer(tokens):
    return tokens.headers(tokens.customer(f"001{uuid.uuid4().hex[:12]}"))


def test_a_report_is_counted_by_reason_and_unknown_reasons_as_other(client, customer):
    before = {r: counted(r) for r in ("eventsource-error", "reconnect", "other")}
    events = {"eventsource-error": 3, "reconnect": 1, "my-new-reason": 2}
    answer = beacon(client, {"events": events}, headers=customer)
    assert answer.status_code == 204
    assert counted("eventsource-error") == before["eventsource-error"] + 3
    assert counted("reconnect") == before["reconnect"] + 1
    assert counted("other") == before["other"] + 2


def test_a_report_needs_a_credential_and_a_stream_ticket_will_do(client, tokens, order):
    assert beacon(client, {"events": {"reconnect": 1}}).status_code == 401
    token = tokens.customer(order["accountId"])
    issued = client.post(
        f"/api/orders/{order['orderId']}/stream-ticket", headers=tokens.headers(token)
    )
    ticket = issued.get_json()["ticket"]
    answer = beacon(client, {"events": {"reconnect": 1}}, query_string={"ticket": ticket})
    assert answer.status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        {"events": []},
        {"events": {}},
        {"events": {"reconnect": 0}},
        {"events": {"reconnect": 1.5}},
        {"events": {"reconnect": True}},
        {"events": {"reconnect": 1001}},
        {"events": {f"r{n}": 1 for n in range(17)}},
        {"reasons": {"reconnect": 1}},
    ],
)
def test_a_malformed_report_is_400_and_counts_nothing(client, customer, body):
    before = counted("reconnect")
    answer = beacon(client, body, headers=customer)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "INVALID_REPORT"
    assert counted("reconnect") == before


def test_an_oversize_report_is_413(client, customer):
    padding = "x" * 3000
    answer = beacon(client, {"events": {"reconnect": 1}, "pad": padding}, headers=customer)
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_flooding_credential_gets_429_with_retry_after(client, customer):
    limit = settings.current().web.client_events_limit
    answers = [beacon(client, {"events": {"reconnect": 1}}, headers=customer) for _ in range(limit)]
    assert {a.status_code for a in answers} == {204}
    before = counted("reconnect")
    refused = beacon(client, {"events": {"reconnect": 1}}, headers=customer)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert counted("reconnect") == before  # refused reports count nothing
