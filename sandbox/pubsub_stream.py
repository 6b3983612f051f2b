"""One `Subscribe` call's state: where it is in the log, how many events it may still send.

Flow control is Salesforce's pull model: each FetchRequest's `num_requested` adds to the
pending count (capped at 100 for the whole call), and events go out only while it is above
zero, in batches of at most that many. A reader thread takes the client's FetchRequests; the
call's own thread waits on the bus's condition for something to do: a batch to send, a
keep-alive due (an empty FetchResponse carrying `latest_replay_id` after `keepalive_seconds`
with nothing sent), or any other change (a fault switched on) to look at.

`latest_replay_id` is this subscription's position (the last event it was sent, or where it
started), never the topic's newest: a client that stores a keep-alive's id while it has asked
for nothing must not skip the events still waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from integrations.pubsub import pubsub_api_pb2 as pb2

from .pubsub_bus import Event, EventBus, TopicLog
from .pubsub_topics import TopicDef

MAX_PENDING = 100


@dataclass(frozen=True)
class Work:
    """What the call's thread should do next."""

    kind: str  # "events", "keepalive", "look" (something changed), "stop", "invalid"
    events: tuple[Event, ...] = ()
    redelivery: bool = False


@dataclass(eq=False)
class Subscription:
    bus: EventBus
    log: TopicLog
    cursor: int  # position of the last event sent (or where the subscription starts)
    rpc_id: str
    pending: int = 0
    redeliveries: deque[Event] = field(default_factory=deque)
    invalid: bool = False
    silenced: bool = False
    ended: bool = False

    @property
    def topic(self) -> TopicDef:
        return self.log.topic

    # --- the client's side (reader thread, gRPC callbacks) ---------------------------------

    def request(self, num_requested: int) -> None:
        with self.bus.condition:
            if num_requested <= 0:
                self.invalid = True
            self.pending = min(MAX_PENDING, self.pending + max(0, num_requested))
            self.bus.notify_locked()

    def end(self) -> None:
        """The call is over (cancelled, finished or failed): stop waiting."""
        with self.bus.condition:
            self.ended = True
            self.bus.notify_locked()

    def read(self, requests: Iterator[Any]) -> threading.Thread:
        """Start the thread that feeds the rest of the client's FetchRequests in."""

        def run() -> None:
            try:
                for fetch in requests:
                    self.request(fetch.num_requested)
            # grpc raises various errors from the iterator once the call is cancelled.
            except Exception:  # noqa: S110
                pass

        thread = threading.Thread(target=run, name=f"pubsub-fetch-{self.rpc_id[:8]}", daemon=True)
        thread.start()
        return thread

    # --- the call's side -------------------------------------------------------------------

    def wait(self, last_sent: float, seen: int) -> tuple[Work, int]:
        """Block until there is work; return it with the bus generation it saw."""
        bus = self.bus
        with bus.condition:
            while True:
                if self.ended or bus.closed:
                    return Work("stop"), bus.generation
                if not self.silenced:
                    work = self._due(last_sent)
                    if work is not None:
                        return work, bus.generation
                if bus.generation != seen:
                    return Work("look"), bus.generation
                left = last_sent + bus.keepalive_seconds - time.monotonic()
                bus.condition.wait(None if self.silenced else max(left, 0.001))

    def _due(self, last_sent: float) -> Work | None:
        if self.invalid:
            return Work("invalid")
        if self.pending > 0:
            if self.redeliveries:
                again = list(self.redeliveries)[: self.pending]
                return Work("events", tuple(again), redelivery=True)
            self.bus.expire_locked(self.log)
            fresh = self.log.after(self.cursor, self.pending)
            if fresh:
                return Work("events", tuple(fresh))
        if time.monotonic() - last_sent >= self.bus.keepalive_seconds:
            return Work("keepalive")
        return None

    def response(self, work: Work) -> pb2.FetchResponse:
        """The FetchResponse for `work`, recording what it sends."""
        with self.bus.condition:
            sent = len(work.events)
            self.pending -= sent
            if work.redelivery:
                for _ in range(sent):
                    self.redeliveries.popleft()
            elif work.events:
                self.cursor = work.events[-1].position
            position = max(self.cursor, self.log.dropped_through)
            return pb2.FetchResponse(
                events=[_consumer_event(event) for event in work.events],
                latest_replay_id=self.bus.replay_id(position),
                rpc_id=self.rpc_id,
                pending_num_requested=self.pending,
            )

    def silence(self) -> None:
        with self.bus.condition:
            self.silenced = True


def _consumer_event(event: Event) -> pb2.ConsumerEvent:
    produced = pb2.ProducerEvent(id=event.id, schema_id=event.schema_id, payload=event.payload)
    return pb2.ConsumerEvent(event=produced, replay_id=event.replay_id)
