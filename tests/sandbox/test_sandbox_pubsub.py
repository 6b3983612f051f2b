"""The Pub/Sub API emulator through the real grpcio client and the vendored stubs, over TLS.

Streams are read with blocking `next()` bounded by each call's deadline, and a subscription
is known to be in place once its first keep-alive arrives (the keep-alive interval is set to
0.2 s here), so nothing waits on a timer.
"""

from __future__ import annotations

import io
import json
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import grpc
import pytest

from integrations.pubsub import pubsub_api_pb2 as pb2
from integrations.pubsub import pubsub_api_pb2_grpc as pb2_grpc
from sandbox.client import SandboxClient

TOPIC = "/event/Order_Activation__e"
KEEPALIVE = 0.2
CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
EARLIEST, LATEST, CUSTOM = (
    pb2.ReplayPreset.EARLIEST,
    pb2.ReplayPreset.LATEST,
    pb2.ReplayPreset.CUSTOM,
)


class Stream:
    """One Subscribe call: FetchRequests go in through a queue, responses come out."""

    def __init__(self, stub: Any, metadata: Any, first: pb2.FetchRequest, timeout: float) -> None:
        self._requests: queue.Queue[pb2.FetchRequest | None] = queue.Queue()
        self._requests.put(first)
        self.call = stub.Subscribe(self._feed(), metadata=metadata, timeout=timeout)

    def _feed(self) -> Iterator[pb2.FetchRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def request(self, count: int) -> None:
        self._requests.put(pb2.FetchRequest(num_requested=count))

    def next(self) -> pb2.FetchResponse:
        return next(self.call)

    def events(self, count: int) -> list[pb2.ConsumerEvent]:
        """Read until `count` events came (keep-alives in between are skipped)."""
        got: list[pb2.ConsumerEvent] = []
        while len(got) < count:
            got.extend(self.next().events)
        return got

    def keepalive(self) -> pb2.FetchResponse:
        response = self.next()
        assert list(response.events) == [], "expected a keep-alive, got events"
        return response

    def close(self) -> None:
        self.call.cancel()
        self._requests.put(None)


class PubSub:
    """A logged-in Pub/Sub API client of the sandbox, plus its control routes."""

    def __init__(self, sandbox: Any, control: Any, token: dict[str, Any]) -> None:
        self.sandbox = sandbox
        self.control = control
        self.token = token
        ca = Path(sandbox.ca_file).read_bytes()
        self.channel = grpc.secure_channel(sandbox.pubsub_url, grpc.ssl_channel_credentials(ca))
        self.stub = pb2_grpc.PubSubStub(self.channel)
        self.streams: list[Stream] = []

    def metadata(self, **override: str) -> tuple[tuple[str, str], ...]:
        values = {
            "accesstoken": self.token["access_token"],
            "instanceurl": self.token["instance_url"],
            "tenantid": self.sandbox.org_id,
            **override,
        }
        return tuple((key, value) for key, value in values.items() if value)

    def subscribe(
        self,
        preset: int = EARLIEST,
        replay_id: bytes = b"",
        num_requested: int = 10,
        timeout: float = 10.0,
        **metadata: str,
    ) -> Stream:
        first = pb2.FetchRequest(
            topic_name=TOPIC, replay_preset=preset, replay_id=replay_id, num_requested=num_requested
        )
        stream = Stream(self.stub, self.metadata(**metadata), first, timeout)
        self.streams.append(stream)
        return stream

    def schema(self) -> tuple[str, Any]:
        topic = self.stub.GetTopic(pb2.TopicRequest(topic_name=TOPIC), metadata=self.metadata())
        info = self.stub.GetSchema(
            pb2.SchemaRequest(schema_id=topic.schema_id), metadata=self.metadata()
        )
        return info.schema_id, fastavro.parse_schema(json.loads(info.schema_json))

    def decode(self, event: pb2.ConsumerEvent) -> dict[str, Any]:
        _, schema = self.schema()
        record = fastavro.schemaless_reader(io.BytesIO(event.event.payload), schema, None)
        assert isinstance(record, dict)
        return record

    def approve(self) -> dict[str, Any]:
        response = self.control.http.post(
            self.control.url("salesforce", "/orders"), json={"approve": True}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def post(self, path: str, **body: Any) -> Any:
        response = self.control.http.post(self.control.url("salesforce", path), json=body)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.channel.close()


@pytest.fixture
def pubsub(sandbox: Any, control: Any, get_token: Any) -> Iterator[PubSub]:
    client = PubSub(sandbox, control, get_token())
    client.post("/pubsub/settings", keepaliveSeconds=KEEPALIVE)
    yield client
    client.close()


def status_of(error: grpc.RpcError) -> tuple[Any, dict[str, str]]:
    trailers = {item.key: item.value for item in error.trailing_metadata() or ()}
    return error.code(), trailers


def refused(stream: Stream) -> tuple[Any, dict[str, str]]:
    """How the stream ends. Keep-alives already on their way may come first; events may not."""
    with pytest.raises(grpc.RpcError) as caught:
        while True:
            assert list(stream.next().events) == []
    return status_of(caught.value)


# --- topics and schemas --------------------------------------------------------------------


def test_get_topic_and_schema(pubsub: PubSub) -> None:
    topic = pubsub.stub.GetTopic(pb2.TopicRequest(topic_name=TOPIC), metadata=pubsub.metadata())
    assert (topic.topic_name, topic.tenant_guid) == (TOPIC, pubsub.sandbox.org_id)
    assert topic.can_subscribe and topic.can_publish and topic.schema_id and topic.rpc_id
    info = pubsub.stub.GetSchema(
        pb2.SchemaRequest(schema_id=topic.schema_id), metadata=pubsub.metadata()
    )
    schema = json.loads(info.schema_json)
    fields = {f["name"]: f["type"] for f in schema["fields"]}
    assert info.schema_id == topic.schema_id and schema["type"] == "record"
    assert fields["CreatedDate"] == "long" and fields["CreatedById"] == "string"
    assert fields["OrderId__c"] == ["null", "string"]


def test_unknown_topic_and_schema_are_not_found(pubsub: PubSub) -> None:
    for call, request in (
        (pubsub.stub.GetTopic, pb2.TopicRequest(topic_name="/event/Nope__e")),
        (pubsub.stub.GetSchema, pb2.SchemaRequest(schema_id="nope")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call(request, metadata=pubsub.metadata())
        code, trailers = status_of(caught.value)
        assert code == grpc.StatusCode.NOT_FOUND
        assert trailers["error-code"].startswith("sfdc.platform.eventbus.grpc.")
        assert trailers["rpc-id"] in caught.value.details()


# --- approvals and delivery ----------------------------------------------------------------


def test_an_approval_reaches_an_earliest_subscriber(pubsub: PubSub, sf: Any) -> None:
    approved = pubsub.approve()
    [event] = pubsub.subscribe(EARLIEST).events(1)
    assert event.event.id == approved["eventId"]
    assert event.replay_id == bytes.fromhex(approved["replayId"])
    assert len(event.replay_id) == 8
    record = pubsub.decode(event)
    assert record["OrderId__c"] == approved["orderId"]
    assert record["CreatedById"].startswith("005")
    assert abs(record["CreatedDate"] / 1000 - time.time()) < 60
    found = sf.query("SELECT Id FROM Order WHERE Approved__c = true")["records"]
    assert [r["Id"] for r in found] == [approved["orderId"]]


def test_approve_route_publishes_a_new_event_each_time(pubsub: PubSub, control: Any) -> None:
    order_id = control.new_order()["orderId"]
    assert control.order(order_id)["record"]["Approved__c"] is False
    url = control.url("salesforce", f"/orders/{order_id}/approve")
    first, second = (control.http.post(url) for _ in range(2))
    assert first.status_code == second.status_code == 202
    assert first.json()["orderId"] == order_id
    assert first.json()["eventId"] != second.json()["eventId"]
    assert control.order(order_id)["record"]["Approved__c"] is True
    listed = control.http.get(control.url("salesforce", "/pubsub/events")).json()["events"]
    assert [e["orderId"] for e in listed] == [order_id, order_id]
    assert [e["replayId"] for e in listed] == [first.json()["replayId"], second.json()["replayId"]]
    missing = control.http.post(control.url("salesforce", "/orders/801000000000000AAA/approve"))
    assert missing.status_code == 404


def test_batch_orders_can_be_approved_at_once(pubsub: PubSub) -> None:
    orders = pubsub.post("/orders/batch", count=3, approve=True)["orders"]
    assert all(order["eventId"] for order in orders)
    events = pubsub.subscribe(EARLIEST).events(3)
    assert [e.event.id for e in events] == [order["eventId"] for order in orders]


def test_flow_control_sends_only_what_was_asked_for(pubsub: PubSub) -> None:
    approved = [pubsub.approve() for _ in range(3)]
    stream = pubsub.subscribe(EARLIEST, num_requested=1)
    first = stream.next()
    assert [e.event.id for e in first.events] == [approved[0]["eventId"]]
    assert first.pending_num_requested == 0
    # Nothing more until asked: the next response is a keep-alive at the same position.
    idle = stream.keepalive()
    assert idle.pending_num_requested == 0
    assert idle.latest_replay_id == first.events[0].replay_id
    stream.request(2)
    rest = stream.events(2)
    assert [e.event.id for e in rest] == [a["eventId"] for a in approved[1:]]


def test_pending_is_capped_at_one_hundred(pubsub: PubSub) -> None:
    stream = pubsub.subscribe(LATEST, num_requested=80)
    stream.request(80)
    while (response := stream.keepalive()).pending_num_requested != 100:
        assert response.pending_num_requested == 80  # the second request not read yet


def test_custom_resumes_after_the_given_id(pubsub: PubSub) -> None:
    approved = [pubsub.approve() for _ in range(3)]
    start = bytes.fromhex(approved[0]["replayId"])
    events = pubsub.subscribe(CUSTOM, replay_id=start).events(2)
    assert [e.event.id for e in events] == [a["eventId"] for a in approved[1:]]


def test_latest_gets_only_new_events(pubsub: PubSub) -> None:
    pubsub.approve()
    stream = pubsub.subscribe(LATEST)
    stream.keepalive()  # subscribed: the position is fixed
    fresh = pubsub.approve()
    assert [e.event.id for e in stream.events(1)] == [fresh["eventId"]]


def test_keepalives_carry_the_latest_replay_id(pubsub: PubSub) -> None:
    approved = pubsub.approve()
    stream = pubsub.subscribe(LATEST)
    for _ in range(2):
        response = stream.keepalive()
        assert response.latest_replay_id == bytes.fromhex(approved["replayId"])
        assert response.pending_num_requested == 10 and response.rpc_id


# --- replay ids ----------------------------------------------------------------------------


def test_corrupt_replay_ids_are_refused(pubsub: PubSub) -> None:
    pubsub.approve()
    for bad in (b"12907414", b"\x00\x01", uuid.uuid4().bytes[:8]):
        code, trailers = refused(pubsub.subscribe(CUSTOM, replay_id=bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert trailers["error-code"] == CORRUPTED and trailers["rpc-id"]


def test_expired_replay_ids_are_refused(pubsub: PubSub) -> None:
    old, newest = pubsub.approve(), pubsub.approve()
    assert pubsub.post("/pubsub/expire") == {"dropped": 2, "retained": 0}
    code, trailers = refused(pubsub.subscribe(CUSTOM, replay_id=bytes.fromhex(old["replayId"])))
    assert (code, trailers["error-code"]) == (grpc.StatusCode.INVALID_ARGUMENT, CORRUPTED)
    # Resuming after the newest event loses nothing, so its id stays good (a quiet channel).
    resumed = pubsub.subscribe(CUSTOM, replay_id=bytes.fromhex(newest["replayId"]))
    assert resumed.keepalive().latest_replay_id == bytes.fromhex(newest["replayId"])


def test_retention_setting_drops_old_events(pubsub: PubSub) -> None:
    pubsub.approve()
    pubsub.post("/pubsub/settings", retentionSeconds=3600)
    assert pubsub.post("/pubsub/expire", seconds=1800) == {"dropped": 0, "retained": 1}
    assert pubsub.post("/pubsub/expire", seconds=1800) == {"dropped": 1, "retained": 0}
    pubsub.subscribe(EARLIEST).keepalive()  # nothing left to replay


def test_corrupt_replay_fault_refuses_a_valid_id(pubsub: PubSub, control: Any) -> None:
    good = bytes.fromhex(pubsub.approve()["replayId"])
    control.fault("salesforce", action="Subscribe", mode="corrupt-replay", times=1)
    pubsub.subscribe(EARLIEST).events(1)  # the fault waits for a CUSTOM subscription
    code, trailers = refused(pubsub.subscribe(CUSTOM, replay_id=good))
    assert (code, trailers["error-code"]) == (grpc.StatusCode.INVALID_ARGUMENT, CORRUPTED)
    pubsub.subscribe(CUSTOM, replay_id=good).keepalive()


# --- auth ----------------------------------------------------------------------------------


def test_bad_credentials_are_unauthenticated(pubsub: PubSub) -> None:
    request = pb2.TopicRequest(topic_name=TOPIC)
    for metadata in (
        pubsub.metadata(accesstoken="00D000000000001!nope"),
        pubsub.metadata(tenantid="00D000000000002AAA"),
        pubsub.metadata(instanceurl=""),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            pubsub.stub.GetTopic(request, metadata=metadata)
        code, trailers = status_of(caught.value)
        assert (code, trailers["error-code"]) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR)
    code, trailers = refused(pubsub.subscribe(EARLIEST, accesstoken="bad"))
    assert (code, trailers["error-code"]) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR)


# --- faults on open streams ----------------------------------------------------------------


def test_unavailable_fault_ends_an_open_stream(pubsub: PubSub, control: Any) -> None:
    stream = pubsub.subscribe(LATEST)
    stream.keepalive()
    control.fault("salesforce", action="Subscribe", mode="unavailable", times=1)
    code, trailers = refused(stream)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert trailers["error-code"] == "sfdc.platform.eventbus.grpc.service.unavailable"
    pubsub.subscribe(LATEST).keepalive()  # one stream ended; the next one works


def test_unauthenticated_fault_expires_the_session(
    pubsub: PubSub, control: Any, get_token: Any
) -> None:
    stream = pubsub.subscribe(LATEST)
    stream.keepalive()
    control.fault("salesforce", action="Subscribe", mode="unauthenticated", times=1)
    code, trailers = refused(stream)
    assert (code, trailers["error-code"]) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR)
    assert refused(pubsub.subscribe(LATEST))[0] == grpc.StatusCode.UNAUTHENTICATED
    pubsub.token = get_token()  # logging in again is enough
    pubsub.subscribe(LATEST).keepalive()


def test_latency_fault_slows_delivery(pubsub: PubSub, control: Any) -> None:
    stream = pubsub.subscribe(LATEST)
    stream.keepalive()
    control.fault("salesforce", action="Subscribe", latencyMs=300, times=1)
    started = time.monotonic()
    approved = pubsub.approve()
    assert [e.event.id for e in stream.events(1)] == [approved["eventId"]]
    assert time.monotonic() - started >= 0.3


def test_silence_fault_stops_even_keepalives(pubsub: PubSub, control: Any) -> None:
    stream = pubsub.subscribe(LATEST, timeout=1.5)
    stream.keepalive()
    control.fault("salesforce", action="Subscribe", mode="silence", times=1)
    pubsub.approve()
    # The event never comes and the keep-alives stop: at most one already on its way gets
    # through before the deadline, where a live stream would send one every 0.2 s.
    late = 0
    with pytest.raises(grpc.RpcError) as caught:
        while True:
            assert list(stream.next().events) == []
            late += 1
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert late <= 2


def test_pubsub_faults_are_checked_like_the_others(control: Any) -> None:
    bad = control.http.post(
        control.url("salesforce", "/faults"), json={"action": "get", "mode": "unavailable"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_FAULT"
    wildcard = control.http.post(
        control.url("salesforce", "/faults"), json={"action": "*", "mode": "corrupt-replay"}
    )
    assert wildcard.status_code == 400


# --- redelivery and publishing -------------------------------------------------------------


def test_redelivery_to_open_and_resuming_subscriptions(pubsub: PubSub) -> None:
    approved = pubsub.approve()
    stream = pubsub.subscribe(EARLIEST)
    [event] = stream.events(1)
    assert pubsub.post("/pubsub/redeliver", count=1) == {"subscriptions": 1}
    [again] = stream.events(1)
    assert (again.event.id, again.replay_id) == (event.event.id, event.replay_id)
    pubsub.post("/pubsub/redeliver", on="resume", count=1)
    resumed = pubsub.subscribe(CUSTOM, replay_id=bytes.fromhex(approved["replayId"]))
    assert [e.event.id for e in resumed.events(1)] == [approved["eventId"]]


def test_publish_round_trip(pubsub: PubSub) -> None:
    schema_id, schema = pubsub.schema()
    buffer = io.BytesIO()
    record = {"CreatedDate": 1, "CreatedById": "005000000000001AAA", "OrderId__c": "801x"}
    fastavro.schemaless_writer(buffer, schema, record)
    good = pb2.ProducerEvent(id=str(uuid.uuid4()), schema_id=schema_id, payload=buffer.getvalue())
    bad = pb2.ProducerEvent(id=str(uuid.uuid4()), schema_id=schema_id, payload=b"\xff\xff")
    response = pubsub.stub.Publish(
        pb2.PublishRequest(topic_name=TOPIC, events=[good, bad]), metadata=pubsub.metadata()
    )
    ok, failed = response.results
    assert len(ok.replay_id) == 8 and ok.correlation_key == good.id and not ok.HasField("error")
    assert failed.error.code == pb2.ErrorCode.PUBLISH and not failed.replay_id
    [event] = pubsub.subscribe(EARLIEST).events(1)
    assert (event.event.id, event.replay_id) == (good.id, ok.replay_id)
    assert pubsub.decode(event) == record


def test_the_control_client_drives_the_event_side(pubsub: PubSub, sandbox: Any) -> None:
    client = SandboxClient(sandbox.salesforce_url, sandbox.whmcs_url, sandbox.ca_file)
    created = client.create_order(approve=True)
    again = client.approve_order(created["orderId"])
    events = client.pubsub_events()
    assert [e["id"] for e in events] == [created["eventId"], again["eventId"]]
    assert client.pubsub_settings(retentionSeconds=60)["retentionSeconds"] == 60
    assert client.expire_events() == {"dropped": 2, "retained": 0}
    assert client.redeliver(on="resume") == {"armed": 1}


def test_replay_ids_look_opaque(pubsub: PubSub) -> None:
    ids = [bytes.fromhex(pubsub.approve()["replayId"]) for _ in range(3)]
    assert len(set(ids)) == 3 and all(len(i) == 8 for i in ids)
    counters = [int.from_bytes(i, "big") for i in ids]
    assert counters != list(range(counters[0], counters[0] + 3))
