"""The Pub/Sub API emulator: Salesforce's `eventbus.v1.PubSub` gRPC service over TLS.

Implements `GetTopic`, `GetSchema`, `Subscribe` (bidirectional, pull flow control, LATEST /
EARLIEST / CUSTOM, keep-alives) and `Publish` from the vendored `pubsub_api.proto`
(`integrations/pubsub`); `PublishStream` and `ManagedSubscribe` answer UNIMPLEMENTED. Every
call needs the metadata `accesstoken` (a token the Salesforce emulator's OAuth endpoint
issued: both share one `TokenStore`), `instanceurl` and `tenantid` (the org id,
`oauth.ORG_ID`). Faults come from the Salesforce emulator's registry (see `pubsub_errors`).
Served with the Salesforce emulator's certificate, so clients trust `salesforce-cert.pem`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import grpc

from integrations.pubsub import pubsub_api_pb2 as pb2
from integrations.pubsub import pubsub_api_pb2_grpc as pb2_grpc

from . import oauth, pubsub_errors
from .faults import FaultRegistry, Plan
from .pubsub_bus import EventBus, ReplayRefused, TopicLog
from .pubsub_errors import PubSubError
from .pubsub_stream import Subscription
from .pubsub_topics import PayloadError, TopicDef

#: Calls served at once; each open Subscribe holds one thread for its lifetime.
MAX_CALLS = 64
_ORG_IDS = {oauth.ORG_ID, oauth.ORG_ID[:15]}
# Clients enable HTTP/2 keepalive pings against half-open links (the Pub/Sub pitfall); allow
# them rather than answering GOAWAY "too_many_pings" as gRPC's defaults would.
_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]


class PubSubServicer(pb2_grpc.PubSubServicer):
    def __init__(
        self,
        bus: EventBus,
        tokens: oauth.TokenStore,
        faults: FaultRegistry,
        stopping: threading.Event,
    ) -> None:
        self.bus = bus
        self.tokens = tokens
        self.faults = faults
        self.stopping = stopping

    # --- unary calls -----------------------------------------------------------------------

    def GetTopic(self, request: pb2.TopicRequest, context: Any) -> pb2.TopicInfo:
        rpc_id = str(uuid.uuid4())
        with _answering(context, rpc_id):
            self._begin("GetTopic", context)
            topic = self._topic(request.topic_name)
            return pb2.TopicInfo(
                topic_name=topic.name,
                tenant_guid=oauth.ORG_ID,
                can_publish=True,
                can_subscribe=True,
                schema_id=topic.schema_id,
                rpc_id=rpc_id,
            )

    def GetSchema(self, request: pb2.SchemaRequest, context: Any) -> pb2.SchemaInfo:
        rpc_id = str(uuid.uuid4())
        with _answering(context, rpc_id):
            self._begin("GetSchema", context)
            topic = self.bus.schema(request.schema_id)
            if topic is None:
                raise PubSubError(
                    "NOT_FOUND",
                    pubsub_errors.SCHEMA_NOT_FOUND,
                    f"Schema not found: {request.schema_id}",
                )
            return pb2.SchemaInfo(
                schema_json=topic.schema_json, schema_id=topic.schema_id, rpc_id=rpc_id
            )

    def Publish(self, request: pb2.PublishRequest, context: Any) -> pb2.PublishResponse:
        rpc_id = str(uuid.uuid4())
        with _answering(context, rpc_id):
            self._begin("Publish", context)
            topic = self._topic(request.topic_name)
            results = [self._publish_one(topic, event) for event in request.events]
            return pb2.PublishResponse(results=results, schema_id=topic.schema_id, rpc_id=rpc_id)

    def _publish_one(self, topic: TopicDef, event: pb2.ProducerEvent) -> pb2.PublishResult:
        # Salesforce reports a bad event in its result and publishes the others.
        event_id = event.id or str(uuid.uuid4())
        try:
            if event.schema_id != topic.schema_id:
                raise PayloadError(f"unknown schema id {event.schema_id!r} for {topic.name}")
            topic.decode(event.payload)
        except PayloadError as exc:
            error = pb2.Error(code=pb2.ErrorCode.PUBLISH, msg=str(exc))
            return pb2.PublishResult(error=error, correlation_key=event_id)
        published = self.bus.publish(topic.name, event.payload, event_id)
        return pb2.PublishResult(replay_id=published.replay_id, correlation_key=event_id)

    # --- Subscribe -------------------------------------------------------------------------

    def Subscribe(
        self, request_iterator: Iterator[pb2.FetchRequest], context: Any
    ) -> Iterator[pb2.FetchResponse]:
        rpc_id = str(uuid.uuid4())
        with _answering(context, rpc_id):
            token = self._authenticate(context)
            first = next(request_iterator, None)
            if first is None:
                return
            subscription = self._open(first, token, rpc_id)
            context.add_callback(subscription.end)
            self.bus.attach(subscription)
            try:
                subscription.read(request_iterator)
                yield from self._deliver(subscription, token)
            finally:
                self.bus.detach(subscription)
                subscription.end()

    def _open(self, first: pb2.FetchRequest, token: str, rpc_id: str) -> Subscription:
        log = self.bus.logs.get(first.topic_name)
        if log is None:
            raise _topic_not_found(first.topic_name)
        custom = first.replay_preset == pb2.ReplayPreset.CUSTOM
        modes = pubsub_errors.STREAM_MODES | ({"corrupt-replay"} if custom else set())
        plan = self.faults.take("Subscribe", modes=modes, latency=False)
        if plan.mode == "corrupt-replay":
            raise pubsub_errors.replay_corrupted()
        self._stream_fault(plan, token, None)
        with self.bus.condition:
            self.bus.expire_locked(log)
            cursor = self._start(log, first)
            subscription = Subscription(self.bus, log, cursor, rpc_id)
        subscription.request(first.num_requested)
        if plan.mode == "silence":
            subscription.silence()
        return subscription

    def _start(self, log: TopicLog, first: pb2.FetchRequest) -> int:
        """The position the subscription resumes after (with the bus condition held)."""
        if first.replay_preset == pb2.ReplayPreset.EARLIEST:
            return log.dropped_through
        if first.replay_preset != pb2.ReplayPreset.CUSTOM:
            return log.last
        if not first.replay_id:
            raise PubSubError(
                "INVALID_ARGUMENT",
                pubsub_errors.REPLAY_VALIDATION_FAILED,
                "The replay_preset field in FetchRequest is set to ReplayPreset.CUSTOM, "
                "but no Replay ID value is set",
            )
        try:
            position = self.bus.position_of(log, first.replay_id)
        except ReplayRefused:
            raise pubsub_errors.replay_corrupted() from None
        return self.bus.rewind_locked(log, position)

    def _deliver(self, subscription: Subscription, token: str) -> Iterator[pb2.FetchResponse]:
        seen = self.bus.generation
        last_sent = time.monotonic()
        while True:
            work, seen = subscription.wait(last_sent, seen)
            if work.kind == "stop":
                if self.bus.closed:
                    raise pubsub_errors.unavailable()
                return
            if work.kind == "invalid":
                raise _requested_invalid()
            plan = self.faults.take(
                "Subscribe", modes=pubsub_errors.STREAM_MODES, latency=bool(work.events)
            )
            self._stream_fault(plan, token, subscription)
            if work.kind == "look" or subscription.silenced:
                continue
            if plan.latency > 0:
                self.stopping.wait(plan.latency)  # slow delivery; stop() cuts it short
            yield subscription.response(work)
            last_sent = time.monotonic()

    def _stream_fault(self, plan: Plan, token: str, subscription: Subscription | None) -> None:
        if plan.mode == "unavailable":
            raise pubsub_errors.unavailable()
        if plan.mode == "unauthenticated":
            self.tokens.revoke(token)  # as an expired session: the client must log in again
            raise pubsub_errors.unauthenticated()
        if plan.mode == "silence" and subscription is not None:
            subscription.silence()

    # --- shared ----------------------------------------------------------------------------

    def _begin(self, action: str, context: Any) -> None:
        """Authenticate a unary call and apply its faults."""
        token = self._authenticate(context)
        plan = self.faults.take(action)
        if plan.latency > 0:
            self.stopping.wait(plan.latency)
        self._stream_fault(plan, token, None)

    def _authenticate(self, context: Any) -> str:
        metadata = {key: value for key, value in context.invocation_metadata()}
        token = str(metadata.get("accesstoken", ""))
        if not (
            token
            and self.tokens.is_valid(token)
            and metadata.get("instanceurl")
            and metadata.get("tenantid") in _ORG_IDS
        ):
            raise pubsub_errors.unauthenticated()
        return token

    def _topic(self, name: str) -> TopicDef:
        topic = self.bus.topic(name)
        if topic is None:
            raise _topic_not_found(name)
        return topic


class _answering:
    """Turns a PubSubError raised inside a call into Salesforce's status and trailers."""

    def __init__(self, context: Any, rpc_id: str) -> None:
        self.context = context
        self.rpc_id = rpc_id

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, PubSubError):
            _abort(self.context, exc, self.rpc_id)


def _abort(context: Any, error: PubSubError, rpc_id: str) -> NoReturn:
    context.set_trailing_metadata((("error-code", error.error_code), ("rpc-id", rpc_id)))
    context.abort(getattr(grpc.StatusCode, error.status), f"{error.message} rpcId: {rpc_id}")
    raise AssertionError("unreachable: abort raises")


def _topic_not_found(name: str) -> PubSubError:
    return PubSubError("NOT_FOUND", pubsub_errors.TOPIC_NOT_FOUND, f"Topic not found: {name}")


def _requested_invalid() -> PubSubError:
    return PubSubError(
        "INVALID_ARGUMENT",
        pubsub_errors.REQUESTED_EVENTS_INVALID,
        "The requested number of events in a fetch request must be greater than zero",
    )


class PubSubServer:
    """The gRPC server: a thread pool, TLS with the sandbox's certificate."""

    def __init__(
        self,
        host: str,
        port: int,
        servicer: PubSubServicer,
        cert: Path,
        key: Path,
    ) -> None:
        self.host = host
        self.bus = servicer.bus
        executor = ThreadPoolExecutor(MAX_CALLS, thread_name_prefix="sandbox-pubsub")
        self._server = grpc.server(executor, options=_OPTIONS, maximum_concurrent_rpcs=MAX_CALLS)
        pb2_grpc.add_PubSubServicer_to_server(servicer, self._server)
        credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
        shown = f"[{host}]" if ":" in host else host
        try:
            self.port = int(self._server.add_secure_port(f"{shown}:{port}", credentials))
        except RuntimeError as exc:  # grpc's way of saying the address is taken
            raise OSError(f"cannot serve the Pub/Sub API on {shown}:{port}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot serve the Pub/Sub API on {shown}:{port}")
        self._server.start()

    def stop(self) -> None:
        """End every open stream (UNAVAILABLE, as a server going away) and stop serving."""
        self.bus.close()
        self._server.stop(grace=1).wait()
