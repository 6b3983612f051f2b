"""Ownership costs Salesforce nothing for submitted orders, one call for a new one however many
ask at once, and a credential that keeps asking about orders it may not see gets a 429."""

from __future__ import annotations

import socket

import pytest

from notifier import normalize_order_id, owners, publish
from tests.helpers import wait_for_terminal
from tests.sse import web_process

pytestmark = pytest.mark.usefixtures("redis_client")


def random_order_ids(count: int) -> list[str]:
    import random
    import string

    alphabet = string.ascii_letters + string.digits
    ids = {
        normalize_order_id("801" + "".join(random.choices(alphabet, k=12))) for _ in range(count)
    }
    return [order_id for order_id in ids if order_id]


def open_many_at_once(ports: list[int], path: str, headers: dict[str, str]) -> list[bytes]:
    """One request per port in `ports`, all sent before any answer is read; the status line
    of each."""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sockets = []
    for port in ports:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(request.encode())
        sockets.append(sock)
    heads = [sock.recv(12) for sock in sockets]
    for sock in sockets:
        sock.close()
    return heads


def test_a_submitted_order_is_watched_without_asking_salesforce(
    client, tokens, sandbox_client, worker
):
    order = sandbox_client.create_order()
    service = tokens.headers(tokens.service())
    assert (
        client.post(f"/api/orders/{order['orderId']}/fulfill", headers=service).status_code == 202
    )
    wait_for_terminal(order["orderId"])
    assert owners.read_owner(order["orderId"]).account_id == order["accountId"]

    before = sandbox_client.api_calls()
    customer = tokens.headers(tokens.customer(order["accountId"]))
    assert client.get(f"/api/orders/{order['orderId']}", headers=customer).status_code == 200
    ticket = client.post(f"/api/orders/{order['orderId']}/stream-ticket", headers=customer)
    assert ticket.status_code == 201
    assert sandbox_client.api_calls() == before


def test_activation_records_the_owner_when_the_trigger_could_not(sandbox_client):
    from fulfillment import ports, steps
    from fulfillment.plan import Job

    order = sandbox_client.create_order()
    # As the trigger leaves an order when Salesforce is down: queued, its owner unknown.
    publish(order["orderId"], {"stage": "queued", "message": "waiting"})
    assert owners.read_owner(order["orderId"]).account_id is None

    steps.activate(Job(order["orderId"], run=1), ports.live())

    assert owners.read_owner(order["orderId"]).account_id == order["accountId"]


def test_many_streams_of_a_new_order_cost_one_salesforce_call(sandbox, tokens, sandbox_client):
    order = sandbox_client.create_order()  # never submitted: nothing recorded yet
    customer = tokens.headers(tokens.customer(order["accountId"]))
    path = f"/api/orders/{order['orderId']}/events"
    before = sandbox_client.api_calls()
    with (
        web_process(SSE_MAX_STREAMS_PER_CREDENTIAL="500") as one,
        web_process(SSE_MAX_STREAMS_PER_CREDENTIAL="500") as two,
    ):
        heads = open_many_at_once([one.port, two.port] * 100, path, customer)
    assert heads == [b"HTTP/1.1 200"] * 200
    assert sandbox_client.api_calls() - before == 1


def test_a_credential_fishing_for_orders_is_slowed_down(client, tokens, sandbox_client, app):
    mine = sandbox_client.create_order()
    customer = tokens.headers(tokens.customer(mine["accountId"]))
    assert client.get(f"/api/orders/{mine['orderId']}", headers=customer).status_code == 200
    limit = app.config["OWNERSHIP_MISS_LIMIT"]
    before = sandbox_client.api_calls()
    answers = [
        client.get(f"/api/orders/{order_id}", headers=customer).status_code
        for order_id in random_order_ids(limit + 5)
    ]
    assert answers[:limit] == [404] * limit
    assert set(answers[limit:]) == {429}
    assert sandbox_client.api_calls() - before == limit  # the rest cost Salesforce nothing

    fishing = random_order_ids(1)[0]
    for path in (f"/api/orders/{fishing}/events", f"/api/orders/{fishing}/stream-ticket"):
        method = client.post if path.endswith("ticket") else client.get
        refused = method(path, headers=customer)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.json["error"]["code"] == "RATE_LIMITED"
    # Its orders whose owner is known, and other customers, are unaffected.
    assert client.get(f"/api/orders/{mine['orderId']}", headers=customer).status_code == 200
    other = sandbox_client.create_order()
    theirs = tokens.headers(tokens.customer(other["accountId"]))
    assert client.get(f"/api/orders/{random_order_ids(1)[0]}", headers=theirs).status_code == 404
