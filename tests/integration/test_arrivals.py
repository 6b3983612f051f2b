"""Streams as customers really arrive: before their order starts, too many at once, too many
per account, and with credentials about to expire (gunicorn + gevent, a raw SSE client)."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from notifier import publish
from tests.helpers import sample, wait_until
from tests.sse import SSEConnection, web_process

pytestmark = pytest.mark.usefixtures("redis_client")


def events_url(order_id: str) -> str:
    return f"/api/orders/{order_id}/events"


def open_stream(port: int, order_id: str, headers: dict[str, str]) -> SSEConnection:
    return SSEConnection.open(port, events_url(order_id), headers)


@pytest.fixture(scope="module")
def web(sandbox):
    with web_process(SSE_HEARTBEAT_SECONDS="1", SSE_MAX_STREAMS_PER_CREDENTIAL="3") as running:
        yield running


def test_an_order_not_started_is_watched_until_its_first_event(web, tokens, sandbox_client):
    order = sandbox_client.create_order()
    stream = open_stream(
        web.port, order["orderId"], tokens.headers(tokens.customer(order["accountId"]))
    )
    assert stream.status == 200
    assert stream.next_event().retry == 3000
    snapshot = stream.next_event()
    assert snapshot.type == "order.snapshot" and snapshot.id is None
    body = snapshot.json
    summary = body.pop("order")  # what was ordered, from the ownership lookup
    assert summary["number"] == order["orderNumber"]
    assert body == {
        "orderId": order["orderId"],
        "stage": None,
        "status": None,
        "history": [],
    }

    event_id = publish(order["orderId"], {"stage": "queued", "message": "waiting"})

    update = stream.until(lambda e: e.type is not None)[-1]
    assert (update.type, update.id, update.json["stage"]) == ("order.update", event_id, "queued")
    stream.close()


def test_an_account_holds_a_bounded_number_of_streams(web, tokens, sandbox_client):
    order = sandbox_client.create_order()
    publish(order["orderId"], {"stage": "queued", "message": "waiting"})
    customer = tokens.headers(tokens.customer(order["accountId"]))
    held = [open_stream(web.port, order["orderId"], customer) for _ in range(3)]
    assert [s.status for s in held] == [200, 200, 200]
    before = _over_quota(web)

    refused = open_stream(web.port, order["orderId"], customer)
    assert refused.status == 429
    assert refused.headers.get("retry-after")
    assert b"TOO_MANY_STREAMS" in refused.body()
    refused.close()
    assert _over_quota(web) == before + 1
    # Operators' tools are not customers: not counted.
    service = open_stream(web.port, order["orderId"], tokens.headers(tokens.service()))
    assert service.status == 200
    service.close()

    held.pop().close()  # a slot frees as soon as the server sees the client go
    wait_until(lambda: _opens(web.port, order["orderId"], customer, held), timeout=10)
    for stream in held:
        stream.close()


def test_the_stream_limit_holds_across_web_processes(web, tokens, sandbox_client):
    order = sandbox_client.create_order()
    publish(order["orderId"], {"stage": "queued", "message": "waiting"})
    customer = tokens.headers(tokens.customer(order["accountId"]))
    with web_process(SSE_MAX_STREAMS_PER_CREDENTIAL="3") as other:
        held = [open_stream(web.port, order["orderId"], customer) for _ in range(2)]
        held.append(open_stream(other.port, order["orderId"], customer))
        assert [s.status for s in held] == [200, 200, 200]
        for port in (web.port, other.port):
            refused = open_stream(port, order["orderId"], customer)
            assert (port, refused.status) == (port, 429)
            refused.close()
        # A stream closed in one process frees its slot in Redis, where the other counts.
        held.pop(0).close()
        wait_until(lambda: _opens(other.port, order["orderId"], customer, held), timeout=10)
        for stream in held:
            stream.close()


def test_a_full_process_sheds_new_streams_before_checking_anything(sandbox, tokens, sandbox_client):
    order = sandbox_client.create_order()
    publish(order["orderId"], {"stage": "queued", "message": "waiting"})
    service = tokens.headers(tokens.service())
    with web_process(SSE_MAX_STREAMS="2", SSE_SHED_RETRY_SECONDS="40") as web:
        held = [open_stream(web.port, order["orderId"], service) for _ in range(2)]
        assert [s.status for s in held] == [200, 200]

        retries = []
        for headers in (service, {}):  # no credentials at all: still shed, not 401
            shed = open_stream(web.port, order["orderId"], headers)
            assert shed.status == 200
            events = list(shed.events())
            assert events[-1].type == "stream.end" and events[-1].json == {"reason": "overloaded"}
            retries.append(events[0].retry)
        assert all(3000 <= retry <= 40_000 for retry in retries)
        for stream in held:
            stream.close()


def test_streams_ended_by_a_shutdown_come_back_spread_out(sandbox, tokens, sandbox_client):
    order = sandbox_client.create_order()
    publish(order["orderId"], {"stage": "queued", "message": "waiting"})
    service = tokens.headers(tokens.service())
    # 12 streams at 2 per second: told to come back over 6 s after the usual 3 s.
    with web_process(SSE_HEARTBEAT_SECONDS="60", SSE_RECONNECT_RATE="2") as web:
        streams = [open_stream(web.port, order["orderId"], service) for _ in range(12)]
        for stream in streams:
            stream.until(lambda e: e.type == "order.snapshot")
        web.worker().send_signal(signal.SIGTERM)
        endings = [list(stream.events()) for stream in streams]

    retries = [events[-2].retry for events in endings]
    assert all(events[-1].json == {"reason": "shutdown"} for events in endings)
    assert all(retry is not None and 3000 <= retry <= 9000 for retry in retries)
    assert len(set(retries)) > 1  # jittered, not one instant for everybody


def test_a_credential_about_to_expire_gets_no_stream_and_no_ticket(
    web, app, tokens, sandbox_client
):
    import jwt

    order = sandbox_client.create_order()
    now = int(time.time())
    # Past its exp but inside the 30 s leeway: still a valid token for the API...
    claims = {"sub": "u", "account_id": order["accountId"], "iat": now - 600, "exp": now - 5}
    lapsing = tokens.headers(jwt.encode(claims, app.config["JWT_SECRET"]))
    client = app.test_client()
    assert client.get(f"/api/orders/{order['orderId']}", headers=lapsing).status_code == 200
    # ...but worth neither a ticket nor a stream: either would end at once, and loop.
    ticket = client.post(f"/api/orders/{order['orderId']}/stream-ticket", headers=lapsing)
    assert ticket.status_code == 401 and ticket.json["error"]["code"] == "TOKEN_EXPIRED"
    stream = open_stream(web.port, order["orderId"], lapsing)
    assert stream.status == 401
    stream.close()


def test_a_stream_ends_before_its_credential_expires(web, app, tokens, sandbox_client):
    import jwt

    order = sandbox_client.create_order()
    now = int(time.time())
    # A 10-second token: its streams end a tenth of that (1 s) before it expires.
    claims = {"sub": "u", "account_id": order["accountId"], "iat": now, "exp": now + 10}
    short = tokens.headers(jwt.encode(claims, app.config["JWT_SECRET"]))
    stream = open_stream(web.port, order["orderId"], short)
    events = list(stream.events())
    ended_at = time.time()

    assert events[-1].type == "stream.end"
    assert events[-1].json == {"reason": "credential-expired"}
    assert ended_at < claims["exp"]  # while the token still works: the page renews in time
    again = open_stream(web.port, order["orderId"], short)
    assert again.status == 401  # and a stream it could no longer keep open is not opened
    again.close()


def _opens(port: int, order_id: str, headers: dict[str, str], held: list) -> bool:
    """Whether a stream opens now (kept in `held`, to be closed by the caller)."""
    stream = open_stream(port, order_id, headers)
    if stream.status != 200:
        stream.close()
        return False
    held.append(stream)
    return True


def _over_quota(web) -> float:
    metrics = requests.get(f"{web.url}/metrics", timeout=5).text
    return sample(metrics, "fulfillment_streams_over_quota_total")
