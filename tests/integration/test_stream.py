"""The event stream served by gunicorn + gevent, read by a raw SSE client (CONTRACT §4)."""

from __future__ import annotations

import random
import signal
import socket
import string
import threading
import time

import pytest

from notifier import keys, normalize_order_id, publish, read_snapshot
from tests.helpers import connected_clients, kill_clients, subscribers, wait_until
from tests.sse import SSEConnection, web_process

pytestmark = pytest.mark.usefixtures("redis_client")


def new_order_id() -> str:
    body = "801" + "".join(random.choices(string.ascii_letters + string.digits, k=12))
    return normalize_order_id(body)


def queued(order_id: str) -> str:
    return publish(order_id, {"stage": "queued", "message": "waiting"})


def retrying(order_id: str, attempt: int) -> str:
    update = {"stage": "retrying", "step": "activating", "attempt": attempt, "nextRetryAt": "x"}
    return publish(order_id, update)


@pytest.fixture(scope="module")
def web(sandbox):
    with web_process(SSE_HEARTBEAT_SECONDS="1") as running:
        yield running


@pytest.fixture
def service_headers(tokens) -> dict[str, str]:
    return tokens.headers(tokens.service())


def open_stream(web, order_id: str, headers: dict[str, str], query: str = "") -> SSEConnection:
    return SSEConnection.open(web.port, f"/api/orders/{order_id}/events{query}", headers)


def test_the_first_bytes_are_retry_and_the_snapshot(web, service_headers):
    order_id = new_order_id()
    first = queued(order_id)
    second = publish(order_id, {"stage": "activating", "status": "Activating"})

    stream = open_stream(web, order_id, service_headers)

    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream"
    for directive in ("no-cache", "no-store", "no-transform"):
        assert directive in stream.headers["cache-control"]
    assert stream.headers["x-accel-buffering"] == "no"
    assert stream.next_event().retry == 3000
    snapshot = stream.next_event()
    assert snapshot.type == "order.snapshot"
    assert snapshot.id == second
    assert snapshot.json["stage"] == "activating"
    assert [h["stage"] for h in snapshot.json["history"]] == ["queued", "activating"]
    assert snapshot.json["history"][0]["timestamp"]
    assert first < second
    stream.close()


def test_updates_arrive_in_order_with_their_ids_then_heartbeats(web, service_headers):
    order_id = new_order_id()
    queued(order_id)
    stream = open_stream(web, order_id, service_headers)
    stream.until(lambda e: e.type == "order.snapshot")

    ids = [retrying(order_id, attempt) for attempt in range(2, 6)]
    updates = [stream.until(lambda e: e.type == "order.update")[-1] for _ in ids]

    assert [u.id for u in updates] == ids
    assert [u.json["attempt"] for u in updates] == [2, 3, 4, 5]
    assert stream.until(lambda e: e.comment is not None)[-1].comment == "heartbeat"
    stream.close()


def test_a_client_resumes_exactly_where_it_left_off(web, service_headers):
    order_id = new_order_id()
    queued(order_id)
    done = threading.Event()

    def keep_publishing() -> None:
        for attempt in range(2, 302):
            retrying(order_id, attempt)
        publish(
            order_id, {"stage": "failed", "error": {"code": "X", "message": "m", "retryable": True}}
        )
        done.set()

    publisher = threading.Thread(target=keep_publishing)
    seen = read_with_reconnects(web, web, order_id, service_headers, publisher)
    publisher.join()

    expected = [e["timestamp"] for e in read_snapshot(order_id).body["history"][1:]]
    assert done.is_set()
    assert [e.json["timestamp"] for e in seen] == expected  # no gap, no repeat, in order


def test_a_client_resumes_on_another_web_process(web, sandbox, service_headers):
    order_id = new_order_id()
    queued(order_id)

    def keep_publishing() -> None:
        for attempt in range(2, 152):
            retrying(order_id, attempt)
        publish(
            order_id, {"stage": "failed", "error": {"code": "X", "message": "m", "retryable": True}}
        )

    with web_process(SSE_HEARTBEAT_SECONDS="1") as other:
        publisher = threading.Thread(target=keep_publishing)
        seen = read_with_reconnects(web, other, order_id, service_headers, publisher)
        publisher.join()

    expected = [e["timestamp"] for e in read_snapshot(order_id).body["history"][1:]]
    assert [e.json["timestamp"] for e in seen] == expected


def read_with_reconnects(first_web, second_web, order_id, headers, publisher) -> list:
    """Read live updates, hanging up every 40 and resuming (alternating web processes) with the
    last id seen, until the terminal event."""
    stream = open_stream(first_web, order_id, headers)
    snapshot = stream.until(lambda e: e.type == "order.snapshot")[-1]
    publisher.start()
    seen, last_id, webs = [], snapshot.id, [second_web, first_web]
    while True:
        for event in stream.events():
            if event.type != "order.update":
                continue
            seen.append(event)
            last_id = event.id
            if event.json["stage"] == "failed":
                stream.close()
                return seen
            if len(seen) % 40 == 0:
                break
        stream.close()
        web = webs[len(seen) // 40 % 2]
        stream = open_stream(web, order_id, {**headers, "Last-Event-ID": last_id})


def test_the_stream_ends_after_the_terminal_event_and_then_answers_204(web, service_headers):
    order_id = new_order_id()
    queued(order_id)
    stream = open_stream(web, order_id, service_headers)
    stream.until(lambda e: e.type == "order.snapshot")
    terminal = publish(order_id, {"stage": "completed", "status": "Completed"})

    events = list(stream.events())  # returns only because the server ends the stream

    assert [e.id for e in events if e.type == "order.update"] == [terminal]
    again = open_stream(web, order_id, {**service_headers, "Last-Event-ID": terminal})
    assert again.status == 204
    by_query = open_stream(web, order_id, service_headers, query=f"?lastEventId={terminal}")
    assert by_query.status == 204


def test_resume_by_query_parameter_and_bad_ids(web, service_headers):
    order_id = new_order_id()
    first = queued(order_id)
    second = retrying(order_id, 2)

    resumed = open_stream(web, order_id, service_headers, query=f"?lastEventId={first}")
    resumed.next_event()  # retry
    replayed = resumed.next_event()
    assert (replayed.type, replayed.id) == ("order.update", second)

    for bad in ("garbage", "1-0", "99999999999999-0", "%00", "1" * 500):
        stream = open_stream(web, order_id, {**service_headers, "Last-Event-ID": bad})
        assert stream.status == 200
        stream.next_event()
        assert stream.next_event().type == "order.snapshot"
        stream.close()


def test_a_stream_ends_when_its_credential_expires(sandbox, tokens, sandbox_client):
    order = sandbox_client.create_order()
    queued(order["orderId"])
    with web_process(SSE_HEARTBEAT_SECONDS="1", JWT_LEEWAY_SECONDS="0") as web:
        # Minted once the web is up: a slow start must not spend the token's two seconds.
        short = tokens.headers(tokens.customer(order["accountId"], ttl=2))
        stream = open_stream(web, order["orderId"], short)
        events = list(stream.events())  # returns only because the server ends the stream

        assert events[-1].type == "stream.end"
        assert events[-1].json == {"reason": "credential-expired"}
        again = open_stream(web, order["orderId"], short)
        assert again.status == 401


def test_closed_clients_are_released_long_before_a_heartbeat(sandbox, redis_client, tokens):
    headers = tokens.headers(tokens.service())
    with web_process(SSE_HEARTBEAT_SECONDS="60") as web:
        open_and_close_streams(web, headers, 50, redis_client)  # warm the connection pool
        idle = (web.server_sockets(), clients(redis_client))

        channels, streams = open_streams(web, headers, 300)
        assert subscribers(channels) == 300
        assert web.server_sockets() == idle[0] + 300
        # One pub/sub connection for all 300 streams: Redis sees no new client.
        assert clients(redis_client) <= idle[1] + 1

        started = time.monotonic()
        for stream in streams:
            stream.close()
        wait_until(lambda: subscribers(channels) == 0, 20)
        wait_until(lambda: web.server_sockets() <= idle[0], 20)
        assert clients(redis_client) <= idle[1]
        released_after = time.monotonic() - started

    assert released_after < 60  # the heartbeat: nothing was written to notice the closes


def open_streams(web, headers, count: int):
    orders = [new_order_id() for _ in range(count)]
    for order_id in orders:
        queued(order_id)
    streams = [open_stream(web, order_id, headers) for order_id in orders]
    for stream in streams:
        stream.until(lambda e: e.type == "order.snapshot")
    return [keys.channel(o) for o in orders], streams


def open_and_close_streams(web, headers, count: int, redis_client) -> None:
    channels, streams = open_streams(web, headers, count)
    for stream in streams:
        stream.close()
    wait_until(lambda: subscribers(channels) == 0, 20)


def clients(redis_client) -> int:
    return connected_clients()


def test_a_slow_client_is_cut_loose_and_others_keep_up(sandbox, tokens, redis_client):
    headers = tokens.headers(tokens.service())
    order_id = new_order_id()
    queued(order_id)
    with web_process(SSE_HEARTBEAT_SECONDS="30", SSE_QUEUE_LIMIT="50") as web:
        slow = open_stream(web, order_id, headers)  # and never read from again
        fast = open_stream(web, order_id, headers)
        fast.until(lambda e: e.type == "order.snapshot")
        received: list[str] = []
        progress = threading.Condition()
        failures: list[BaseException] = []

        def read() -> None:
            try:
                for event in fast.events():
                    if event.type == "order.update":
                        with progress:
                            received.append(event.id)
                            progress.notify_all()
                        if event.json.get("attempt") == 801:
                            return
            except BaseException as error:  # the assertion below names it
                failures.append(error)
            finally:
                with progress:
                    progress.notify_all()

        reader = threading.Thread(target=read)
        reader.start()
        # More than the kernel buffers on both sides hold (4 MB), so the server must queue
        # for the slow client; each batch waits for the reading client to catch up first, so
        # a loaded machine's slow test reader cannot fall a queue's worth behind.
        big = "x" * 16_000
        ids: list[str] = []
        for attempt in range(2, 802):
            if attempt % 20 == 0:
                with progress:
                    progress.wait_for(
                        lambda: len(received) >= len(ids) - 20 or failures or not reader.is_alive(),
                        timeout=30,
                    )
            update = {"stage": "retrying", "step": "activating", "attempt": attempt,
                      "nextRetryAt": "x", "message": big}  # fmt: skip
            ids.append(publish(order_id, update))
        reader.join(timeout=60)
        assert not failures and received == ids, failures
        assert subscribers([keys.channel(order_id)]) == 1  # the fast one only
        assert slow.closed_by_server(timeout=20)
        fast.close()


def test_sigterm_ends_streams_cleanly(sandbox, tokens):
    headers = tokens.headers(tokens.service())
    order_id = new_order_id()
    queued(order_id)
    with web_process(SSE_HEARTBEAT_SECONDS="30") as web:
        streams = [open_stream(web, order_id, headers) for _ in range(20)]
        for stream in streams:
            stream.until(lambda e: e.type == "order.snapshot")
        started = time.monotonic()
        web.process.send_signal(signal.SIGTERM)
        endings = [list(stream.events()) for stream in streams]  # each ends with chunked EOF
        web.process.wait(timeout=30)
        stopped_after = time.monotonic() - started
    assert all(e and e[-1].type == "stream.end" for e in endings)
    assert {e[-1].json["reason"] for e in endings} == {"shutdown"}
    assert stopped_after < 10  # WEB_GRACEFUL_TIMEOUT: streams did not hold the worker up


def test_a_lost_pubsub_connection_ends_streams_so_clients_resume(
    web, redis_client, service_headers
):
    order_id = new_order_id()
    queued(order_id)
    stream = open_stream(web, order_id, service_headers)
    snapshot = stream.until(lambda e: e.type == "order.snapshot")[-1]

    from streaming.hub import hub_client_name

    assert kill_clients(hub_client_name())  # the web process's pub/sub connection(s)
    events = list(stream.events())

    assert events[-1].type == "stream.end" and events[-1].json["reason"] == "redis-unavailable"
    missed = retrying(order_id, 2)
    resumed = open_stream(web, order_id, {**service_headers, "Last-Event-ID": snapshot.id})
    assert resumed.until(lambda e: e.type == "order.update")[-1].id == missed
    resumed.close()


# --- helpers -------------------------------------------------------------------------------


def namespace() -> str:
    from notifier import keys

    return keys.namespace()


def test_a_burst_of_simultaneous_connections_all_get_their_snapshot(web, service_headers):
    # Regression: 300+ first subscriptions arriving together once deadlocked the hub (a full
    # wake-up pipe written under the lock the reader needed).
    orders = [new_order_id() for _ in range(400)]
    for order_id in orders:
        queued(order_id)
    sockets = []
    for order_id in orders * 2:
        sock = socket.create_connection(("127.0.0.1", web.port), timeout=20)
        request = f"GET /api/orders/{order_id}/events HTTP/1.1\r\nHost: x\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in service_headers.items()) + "\r\n"
        sock.sendall(request.encode())  # all sent before any answer is read
        sockets.append(sock)
    heads = [sock.recv(12) for sock in sockets]
    for sock in sockets:
        sock.close()
    assert heads == [b"HTTP/1.1 200"] * len(sockets)
