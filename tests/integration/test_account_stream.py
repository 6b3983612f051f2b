"""`GET /api/orders/events`: every order of an account in one stream, served by gunicorn +
gevent and read by a raw SSE client; `GET /api/orders`, the same list as JSON."""

from __future__ import annotations

import random
import string
import uuid

import pytest
import requests

from notifier import normalize_order_id, publish
from notifier.order_ids import normalize_salesforce_id
from notifier.owners import record_owner
from tests.sse import SSEConnection, web_process

pytestmark = pytest.mark.usefixtures("redis_client")


def new_order_id() -> str:
    return normalize_order_id("801" + "".join(random.choices(string.ascii_letters, k=12)))


def new_account() -> str:
    return normalize_salesforce_id("001" + uuid.uuid4().hex[:12])


def placed(account: str) -> str:
    """An order of `account` that the pipeline knows the owner of (as a trigger records it)."""
    order_id = new_order_id()
    record_owner(order_id, account)
    return order_id


@pytest.fixture(scope="module")
def web(sandbox):
    with web_process(SSE_HEARTBEAT_SECONDS="1") as running:
        yield running


def open_account(web, headers, query: str = "") -> SSEConnection:
    return SSEConnection.open(web.port, f"/api/orders/events{query}", headers)


def test_one_stream_carries_every_order_of_the_account_past_terminal_states(web, tokens):
    account = new_account()
    first, second = placed(account), placed(account)
    publish(first, {"stage": "queued"})
    stream = open_account(web, tokens.headers(tokens.customer(account)))

    assert stream.next_event().retry == 3000
    snapshot = stream.next_event()
    assert snapshot.type == "account.snapshot"
    orders = {o["orderId"]: o for o in snapshot.json["orders"]}
    assert [o["orderId"] for o in snapshot.json["orders"]] == [second, first]  # newest first
    assert orders[first]["stage"] == "queued" and orders[first]["eventId"]
    assert orders[second]["stage"] is None  # known to be the account's, not started

    done = publish(first, {"stage": "completed", "status": "Completed"})
    started = publish(second, {"stage": "queued"})
    updates = [stream.until(lambda e: e.type == "order.update")[-1] for _ in range(2)]
    assert [(u.json["orderId"], u.json["stage"]) for u in updates] == [
        (first, "completed"),
        (second, "queued"),  # the stream went on past the first order's terminal state
    ]
    assert [u.json["eventId"] for u in updates] == [done, started]
    assert snapshot.id < updates[0].id < updates[1].id
    stream.close()


def test_resume_by_last_event_id_loses_and_repeats_nothing(web, tokens):
    account = new_account()
    order = placed(account)
    headers = tokens.headers(tokens.customer(account))
    stream = open_account(web, headers)
    snapshot = stream.until(lambda e: e.type == "account.snapshot")[-1]
    publish(order, {"stage": "queued"})
    seen = stream.until(lambda e: e.type == "order.update")[-1]
    stream.close()

    publish(order, {"stage": "activating", "status": "Activating"})  # while disconnected
    publish(placed(account), {"stage": "queued"})
    resumed = open_account(web, {**headers, "Last-Event-ID": seen.id})
    assert resumed.next_event().retry == 3000
    replayed = [resumed.until(lambda e: e.type == "order.update")[-1] for _ in range(2)]
    assert [u.json["stage"] for u in replayed] == ["activating", "queued"]
    assert seen.id < replayed[0].id < replayed[1].id and snapshot.id is None
    resumed.close()

    # An id the log no longer holds (or never did): a fresh snapshot, not an error.
    fresh = open_account(web, headers, "?lastEventId=1-1")
    assert fresh.until(lambda e: e.type is not None)[-1].type == "account.snapshot"
    fresh.close()


def test_heartbeats_keep_a_quiet_account_stream_open(web, tokens):
    stream = open_account(web, tokens.headers(tokens.customer(new_account())))
    stream.until(lambda e: e.type == "account.snapshot")
    assert stream.until(lambda e: e.comment is not None)[-1].comment == "heartbeat"
    stream.close()


def test_who_may_open_an_account_stream(web, tokens, order):
    customer = tokens.headers(tokens.customer(order["accountId"]))
    api = f"http://127.0.0.1:{web.port}/api/orders"
    order_ticket = requests.post(
        f"{api}/{order['orderId']}/stream-ticket", headers=customer, timeout=10
    ).json()["ticket"]
    account_ticket = requests.post(f"{api}/stream-ticket", headers=customer, timeout=10)
    assert account_ticket.status_code == 201
    ticket = account_ticket.json()["ticket"]

    by_ticket = open_account(web, {}, f"?ticket={ticket}")
    assert by_ticket.status == 200
    assert by_ticket.until(lambda e: e.type is not None)[-1].type == "account.snapshot"
    by_ticket.close()
    refused = {
        "no credential": open_account(web, {}),
        "an order's ticket": open_account(web, {}, f"?ticket={order_ticket}"),
        "a service token": open_account(web, tokens.headers(tokens.service())),
        "an expired token": open_account(web, tokens.headers(tokens.customer("001x", ttl=-60))),
    }
    assert {why: s.status for why, s in refused.items()} == {
        "no credential": 401,
        "an order's ticket": 403,
        "a service token": 403,
        "an expired token": 401,
    }
    # ...and the account ticket opens no order's stream.
    on_order = SSEConnection.open(
        web.port, f"/api/orders/{order['orderId']}/events?ticket={ticket}", {}
    )
    assert on_order.status == 403


def test_the_orders_list_is_the_accounts_newest_first_with_live_stages(web, tokens):
    account = new_account()
    first, second = placed(account), placed(account)
    publish(second, {"stage": "queued"})
    answer = requests.get(
        f"http://127.0.0.1:{web.port}/api/orders",
        headers=tokens.headers(tokens.customer(account)),
        timeout=10,
    )
    assert answer.status_code == 200
    listed = [(o["orderId"], o["stage"]) for o in answer.json()["orders"]]
    assert listed == [(second, "queued"), (first, None)]
    other = requests.get(
        f"http://127.0.0.1:{web.port}/api/orders",
        headers=tokens.headers(tokens.customer(new_account())),
        timeout=10,
    )
    assert other.json()["orders"] == []


def test_orders_nobody_looked_up_are_listed_from_one_salesforce_read_a_day(
    web, tokens, sandbox_client
):
    first = sandbox_client.create_order()
    second = sandbox_client.create_order(account_id=first["accountId"])
    headers = tokens.headers(tokens.customer(first["accountId"]))
    calls = sandbox_client.api_calls()

    listed = requests.get(f"http://127.0.0.1:{web.port}/api/orders", headers=headers, timeout=10)
    orders = listed.json()["orders"]
    assert [o["orderId"] for o in orders] == [second["orderId"], first["orderId"]]
    assert all(o["stage"] is None for o in orders)  # placed, not started
    assert orders[0]["order"]["number"] == second["orderNumber"] and orders[0]["order"]["items"]
    assert sandbox_client.api_calls() - calls == 1

    stream = open_account(web, headers)  # the stream's snapshot: the same, no call of its own
    snapshot = stream.until(lambda e: e.type == "account.snapshot")[-1]
    stream.close()
    assert [o["orderId"] for o in snapshot.json["orders"]] == [o["orderId"] for o in orders]
    assert sandbox_client.api_calls() - calls == 1
