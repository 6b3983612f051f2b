"""The event bus behind the Pub/Sub API emulator: one append-only log per topic.

Each event gets a UUID, a per-topic position (1, 2, 3, ...) and a replay id that encodes the
position opaquely: 8 bytes, big-endian, of (position x a random odd multiplier) mod 2^64 XOR a
random salt, both drawn per sandbox run. The multiplication scatters neighbouring positions
(a bare XOR would leave them consecutive), so clients cannot do arithmetic on ids (Salesforce's
are opaque and not contiguous), and ids from another sandbox or an earlier run decode to
positions this log never had and are refused. The log lives in memory only: after
a restart every old replay id is refused and clients fall back to EARLIEST (and their sweep).

Retention drops events older than `retention_seconds`. A replay id is accepted while resuming
after it loses nothing: it names an event of this log (or the position before the first one)
and no event after it has been dropped. So the newest id stays valid on a quiet channel, as
Salesforce's keep-alive `latest_replay_id` does.

One condition variable guards everything; every change (publish, settings, faults, redelivery,
close) bumps `generation` and wakes the waiting subscriptions.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .pubsub_topics import TopicDef, default_topics

DEFAULT_RETENTION_SECONDS = 72 * 3600.0
DEFAULT_KEEPALIVE_SECONDS = 270.0
REPLAY_ID_BYTES = 8
_BITS = REPLAY_ID_BYTES * 8
_MASK = (1 << _BITS) - 1


class ReplayRefused(ValueError):
    """A replay id that is malformed, unknown, or older than what the log still holds."""


@dataclass(frozen=True)
class Event:
    id: str
    position: int
    replay_id: bytes
    schema_id: str
    payload: bytes
    created: float  # epoch seconds


@dataclass
class TopicLog:
    topic: TopicDef
    events: deque[Event] = field(default_factory=deque)
    last: int = 0  # position of the newest event ever appended
    dropped_through: int = 0  # every event up to this position has been dropped

    def after(self, position: int, limit: int) -> list[Event]:
        """Up to `limit` retained events after `position`, oldest first."""
        if not self.events:
            return []
        start = max(0, position + 1 - self.events[0].position)
        return [self.events[i] for i in range(start, min(len(self.events), start + limit))]


class EventBus:
    """Topics, their logs and the runtime settings, shared by the gRPC and control threads."""

    def __init__(
        self,
        topics: Iterable[TopicDef] | None = None,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS,
    ) -> None:
        self.condition = threading.Condition()
        self.logs = {t.name: TopicLog(t) for t in (default_topics() if topics is None else topics)}
        self.retention_seconds = retention_seconds
        self.keepalive_seconds = keepalive_seconds
        self.generation = 0
        self.closed = False
        self._salt = secrets.randbits(_BITS)
        self._multiplier = secrets.randbits(_BITS) | (1 << (_BITS - 1)) | 1  # odd: invertible
        self._inverse = pow(self._multiplier, -1, 1 << _BITS)
        self._subscribers: set[Any] = set()  # pubsub_stream.Subscription, kept loosely typed
        # One entry per armed resubscribe: how many events before its replay id to resend.
        self._rewinds: deque[int] = deque()

    # --- replay ids ------------------------------------------------------------------------

    def replay_id(self, position: int) -> bytes:
        scrambled = ((position * self._multiplier) & _MASK) ^ self._salt
        return scrambled.to_bytes(REPLAY_ID_BYTES, "big")

    def position_of(self, log: TopicLog, replay_id: bytes) -> int:
        """The position a CUSTOM replay id resumes after (call with the condition held)."""
        if len(replay_id) != REPLAY_ID_BYTES:
            raise ReplayRefused("The Replay ID validation failed.")
        position = ((int.from_bytes(replay_id, "big") ^ self._salt) * self._inverse) & _MASK
        if position > log.last or position < log.dropped_through:
            raise ReplayRefused("The Replay ID validation failed.")
        return position

    # --- the log ---------------------------------------------------------------------------

    def topic(self, name: str) -> TopicDef | None:
        log = self.logs.get(name)
        return log.topic if log else None

    def schema(self, schema_id: str) -> TopicDef | None:
        return next(
            (log.topic for log in self.logs.values() if log.topic.schema_id == schema_id), None
        )

    def publish(
        self,
        topic: str,
        payload: bytes,
        event_id: str | None = None,
        created: float | None = None,
    ) -> Event:
        """Append one event (the payload already encoded with the topic's schema)."""
        (event,) = self.publish_all(topic, [payload], [event_id], created)
        return event

    def publish_all(
        self,
        topic: str,
        payloads: list[bytes],
        event_ids: list[str | None] | None = None,
        created: float | None = None,
    ) -> list[Event]:
        """Append events published together (one transaction's), waking subscribers once."""
        with self.condition:
            log = self.logs[topic]
            self.expire_locked(log)
            events = []
            for payload, event_id in zip(
                payloads, event_ids or [None] * len(payloads), strict=True
            ):
                log.last += 1
                events.append(Event(
                    id=event_id or str(uuid.uuid4()),
                    position=log.last,
                    replay_id=self.replay_id(log.last),
                    schema_id=log.topic.schema_id,
                    payload=payload,
                    created=time.time() if created is None else created,
                ))  # fmt: skip
            log.events.extend(events)
            self.notify_locked()
            return events

    def expire_locked(self, log: TopicLog) -> int:
        """Drop the events older than the retention period; return how many went."""
        cutoff = time.time() - self.retention_seconds
        dropped = 0
        while log.events and log.events[0].created < cutoff:
            log.dropped_through = log.events.popleft().position
            dropped += 1
        return dropped

    def age(self, seconds: float) -> dict[str, int]:
        """Move every retained event's creation time `seconds` back, then apply retention:
        how tests make events fall out of the window without waiting for it."""
        with self.condition:
            dropped = retained = 0
            for log in self.logs.values():
                log.events = deque(replace(e, created=e.created - seconds) for e in log.events)
                dropped += self.expire_locked(log)
                retained += len(log.events)
            self.notify_locked()
            return {"dropped": dropped, "retained": retained}

    def retained(self, topic: str) -> list[Event]:
        with self.condition:
            log = self.logs[topic]
            self.expire_locked(log)
            return list(log.events)

    # --- settings and wake-ups -------------------------------------------------------------

    def configure(
        self, retention_seconds: float | None = None, keepalive_seconds: float | None = None
    ) -> None:
        with self.condition:
            if retention_seconds is not None:
                self.retention_seconds = retention_seconds
                for log in self.logs.values():
                    self.expire_locked(log)
            if keepalive_seconds is not None:
                self.keepalive_seconds = keepalive_seconds
            self.notify_locked()

    def settings(self) -> dict[str, float]:
        with self.condition:
            return {
                "retentionSeconds": self.retention_seconds,
                "keepaliveSeconds": self.keepalive_seconds,
            }

    def notify_locked(self) -> None:
        self.generation += 1
        self.condition.notify_all()

    def wake(self) -> None:
        """Wake every waiting subscription (a fault was added, a client went away)."""
        with self.condition:
            self.notify_locked()

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.notify_locked()

    # --- subscriptions ---------------------------------------------------------------------

    def attach(self, subscription: Any) -> None:
        with self.condition:
            self._subscribers.add(subscription)

    def detach(self, subscription: Any) -> None:
        with self.condition:
            self._subscribers.discard(subscription)

    def redeliver(self, topic: str, count: int) -> int:
        """Queue the last `count` retained events again on every open subscription of
        `topic` (delivery is at least once); return how many subscriptions got them."""
        with self.condition:
            log = self.logs[topic]
            self.expire_locked(log)
            again = list(log.events)[-count:]
            targets = [s for s in self._subscribers if s.topic.name == topic]
            for subscription in targets:
                subscription.redeliveries.extend(again)
            self.notify_locked()
            return len(targets)

    def rewind_resumes(self, count: int, times: int) -> None:
        """Make the next `times` CUSTOM subscriptions start `count` events early, so they get
        the event their replay id names (and `count - 1` before it) a second time."""
        with self.condition:
            self._rewinds.extend([count] * times)

    def rewind_locked(self, log: TopicLog, position: int) -> int:
        """Where a CUSTOM subscription resuming after `position` really starts."""
        if not self._rewinds:
            return position
        return max(log.dropped_through, position - self._rewinds.popleft())

    def subscriber_count(self) -> int:
        with self.condition:
            return len(self._subscribers)
