"""A thin client of Salesforce's Pub/Sub API (gRPC over HTTP/2, Avro payloads), for one topic.

`Subscription` is one `Subscribe` call: the first `FetchRequest` says where to start
(`LATEST`, `EARLIEST`, or `CUSTOM` after a replay id), each later one asks for more events
(flow control: the server sends no more than was asked for). Responses are read on a thread
of their own into a queue, so the caller can wait with a deadline (a stream that went silent,
not even a keep-alive, is resubscribed by the caller). Events are decoded with the schema
their `schema_id` names, fetched once with `GetSchema` and cached.

Errors surface as `PubSubError` with the gRPC code and Salesforce's `error-code` and `rpc-id`
trailers (never the metadata we sent: it holds the access token).

gRPC and gevent's monkey-patching do not mix: the listener runs in a plain process.
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastavro
import grpc

from .pubsub import pubsub_api_pb2 as pb
from .pubsub import pubsub_api_pb2_grpc as pb_grpc
from .salesforce import PubSubAuth

#: Salesforce's error code for a replay id it refuses (expired or corrupted).
REPLAY_REFUSED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
_STOP = object()


class PubSubError(Exception):
    """A failed Pub/Sub call: its gRPC status and Salesforce's trailers."""

    def __init__(self, code: grpc.StatusCode, error_code: str, rpc_id: str, details: str) -> None:
        super().__init__(f"{code.name} {error_code or ''} (rpc {rpc_id or '?'}): {details}")
        self.code, self.error_code, self.rpc_id = code, error_code, rpc_id

    @property
    def replay_refused(self) -> bool:
        return self.code is grpc.StatusCode.INVALID_ARGUMENT and "replayid" in self.error_code

    @property
    def unauthenticated(self) -> bool:
        return self.code is grpc.StatusCode.UNAUTHENTICATED or "auth" in self.error_code

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> PubSubError:
        trailers = dict(error.trailing_metadata() or ()) if isinstance(error, grpc.Call) else {}
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return cls(
            code, str(trailers.get("error-code", "")), str(trailers.get("rpc-id", "")), details
        )


@dataclass(frozen=True)
class Event:
    """One delivered event: Salesforce's event id, its replay id and decoded fields."""

    event_id: str
    replay_id: bytes
    fields: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """The FetchResponses that had arrived (at least one): their events, in order (none for
    a keep-alive), the last one's latest replay id and pending count."""

    events: list[Event]
    latest_replay_id: bytes
    pending: int


def open_channel(target: str, ca_bundle: str | None) -> grpc.Channel:
    root = open(ca_bundle, "rb").read() if ca_bundle else None  # noqa: SIM115
    # HTTP/2 keepalives notice a connection that died without a FIN (half-open streams).
    options = [("grpc.keepalive_time_ms", 60_000), ("grpc.keepalive_timeout_ms", 20_000)]
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root), options=options)


class PubSubClient:
    """Subscribes to one topic with one session (`auth`, renewed by the caller)."""

    def __init__(self, channel: grpc.Channel, auth: PubSubAuth) -> None:
        self._stub = pb_grpc.PubSubStub(channel)
        self.auth = auth
        self._schemas: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        try:
            return self._stub.GetTopic(pb.TopicRequest(topic_name=name), metadata=self._meta())
        except grpc.RpcError as exc:
            raise PubSubError.from_rpc(exc) from None

    def subscribe(
        self, topic: str, replay_id: bytes | None, batch_size: int, earliest: bool = False
    ) -> Subscription:
        """A Subscribe call from after `replay_id` (or the earliest retained event, or the
        latest), asking for `batch_size` events to begin with."""
        if replay_id:
            first = pb.FetchRequest(
                topic_name=topic, replay_preset=pb.ReplayPreset.CUSTOM, replay_id=replay_id
            )
        else:
            preset = pb.ReplayPreset.EARLIEST if earliest else pb.ReplayPreset.LATEST
            first = pb.FetchRequest(topic_name=topic, replay_preset=preset)
        first.num_requested = batch_size
        return Subscription(self, topic, first)

    def decode(self, consumer_event: Any) -> Event:
        event = consumer_event.event
        schema = self._schema(event.schema_id)
        fields = fastavro.schemaless_reader(io.BytesIO(event.payload), schema)
        return Event(event.id, bytes(consumer_event.replay_id), dict(fields))  # type: ignore[arg-type]

    def _schema(self, schema_id: str) -> Any:
        schema = self._schemas.get(schema_id)
        if schema is None:
            try:
                info = self._stub.GetSchema(
                    pb.SchemaRequest(schema_id=schema_id), metadata=self._meta()
                )
            except grpc.RpcError as exc:
                raise PubSubError.from_rpc(exc) from None
            schema = self._schemas[schema_id] = fastavro.parse_schema(json.loads(info.schema_json))
        return schema

    def _meta(self) -> tuple[tuple[str, str], ...]:
        return self.auth.metadata()

    def _open(self, requests: Iterator[Any]) -> Any:
        return self._stub.Subscribe(requests, metadata=self._meta())


class Subscription:
    """One Subscribe call. `ask(n)` requests more events; `next_batch(timeout)` waits for the
    next response (None at the deadline); `close()` ends the call."""

    def __init__(self, client: PubSubClient, topic: str, first: Any) -> None:
        self._client, self._topic = client, topic
        self._requests: queue.Queue[Any] = queue.Queue()
        self._responses: queue.Queue[Any] = queue.Queue()
        self._requests.put(first)
        self._ended: PubSubError | None = None
        self._call = client._open(iter(self._requests.get, _STOP))
        self._reader = threading.Thread(target=self._read, name="pubsub-reader", daemon=True)
        self._reader.start()

    def ask(self, count: int) -> None:
        self._requests.put(pb.FetchRequest(topic_name=self._topic, num_requested=count))

    def next_batch(self, timeout: float) -> Batch | None:
        """The next response, with every response already behind it, decoded; None when
        nothing came within `timeout` seconds. Raises PubSubError when the call ended.

        Salesforce sends events as they come, one response each at a trickle; taking what has
        already arrived together lets a listener that fell behind catch up in one batch (one
        lookup, one round of claims) instead of paying a batch's cost per event. Never more
        than was asked for, so flow control holds."""
        if self._ended is not None:
            raise self._ended
        try:
            responses = [self._responses.get(timeout=timeout)]
        except queue.Empty:
            return None
        while not isinstance(responses[-1], PubSubError):
            try:
                responses.append(self._responses.get_nowait())
            except queue.Empty:
                break
        if isinstance(responses[-1], PubSubError):
            self._ended = responses.pop()  # raised once what came before it is handled
            if not responses:
                raise self._ended
        fetched: list[Any] = responses  # FetchResponses only, now
        events = [self._client.decode(e) for r in fetched for e in r.events]
        last = fetched[-1]
        return Batch(events, bytes(last.latest_replay_id), int(last.pending_num_requested))

    def arrived(self) -> int:
        """Events received and not taken yet (how far the handling lags behind the stream)."""
        with self._responses.mutex:
            waiting = list(self._responses.queue)
        return sum(len(r.events) for r in waiting if not isinstance(r, PubSubError))

    def close(self) -> None:
        self._requests.put(_STOP)
        self._call.cancel()
        self._reader.join(timeout=5)

    def _read(self) -> None:
        try:
            for response in self._call:
                self._responses.put(response)
            ended: PubSubError = PubSubError(grpc.StatusCode.UNAVAILABLE, "", "", "stream ended")
        except grpc.RpcError as exc:
            ended = PubSubError.from_rpc(exc)
        self._responses.put(ended)
