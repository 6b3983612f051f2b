"""One order's event stream: catch up, then follow live, with heartbeats and clean endings.

    open ─► subscribe (confirmed) ─► catch up: snapshot, or replay after Last-Event-ID
         ─► live: frames newer than the last one sent, `: heartbeat` after each quiet interval
         ─► end: after a terminal event, at credential expiry, on shutdown or a Redis failure,
                 when the client leaves (noticed at once under gevent), or when it reads too
                 slowly (its queue overflowed; it reconnects and replays).

Subscribing before reading the history and dropping live frames at or below the last id sent
means nothing is lost or repeated at the seam between replay and live delivery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from notifier.events import (
    SNAPSHOT_EVENT,
    UPDATE_EVENT,
    Stage,
    build_snapshot,
    is_terminal,
    pending_snapshot,
)
from observability.tally import Tally

from .hub import Frame, Subscriber
from .liveness import peer_closed
from .metrics import DELIVERY_SECONDS, EVENTS_DELIVERED, HEARTBEATS
from .opening import Opening
from .sse import HEARTBEAT, EventId, encode_json, event_frame, parse_event_id, retry_frame

END_EVENT = "stream.end"
#: Endings the server causes (not the order, the client or the credential): the browser is
#: told when to come back, so a whole process's streams do not return at the same instant.
_SPREAD_ENDINGS = frozenset({"shutdown", "redis-unavailable"})


class AlreadyFinished(Exception):
    """Raised when the client already saw the terminal event (answer 204: stop reconnecting)."""


@dataclass(frozen=True)
class CatchUp:
    """What a new stream sends before live events."""

    frames: list[bytes]
    last_id: EventId | None
    finished: bool
    #: `order.snapshot`, or `order.update` for a replay.
    kind: str = SNAPSHOT_EVENT


def catch_up(
    order_id: str, opening: Opening, resume_from: EventId | None, wait_for_retry: bool = False
) -> CatchUp:
    """The snapshot, or the events after the client's resume id when the history still held
    it (`opening.resumed`).

    A client that already saw the terminal event gets AlreadyFinished (204), unless that event
    was `failed` and it asked to wait for an operator retry: then nothing is sent yet and the
    stream stays open for the next run's events. An order with no events yet (the caller was
    told it exists) gets a snapshot with no stage and no history, and waits for its first.
    """
    if opening.resumed and resume_from is not None:
        return _replay(order_id, opening, resume_from, wait_for_retry)
    if opening.current is None:
        pending = pending_snapshot(order_id, opening.summary)
        frame = event_frame(SNAPSHOT_EVENT, None, encode_json(pending))
        return CatchUp([frame], None, False)
    history = [payload for _, payload in opening.entries]
    body = build_snapshot(opening.current, history, opening.summary)
    frame = event_frame(SNAPSHOT_EVENT, opening.event_id, encode_json(body))
    finished = is_terminal(opening.current.get("stage"))
    return CatchUp([frame], parse_event_id(opening.event_id), finished)


def _replay(order_id: str, opening: Opening, resume_from: EventId, wait_for_retry: bool) -> CatchUp:
    stage = (opening.current or {}).get("stage")
    if not opening.entries and is_terminal(stage):
        if wait_for_retry and stage == Stage.FAILED:
            return CatchUp([], resume_from, False, UPDATE_EVENT)
        raise AlreadyFinished(order_id)
    frames = [
        event_frame(UPDATE_EVENT, entry_id, encode_json(payload))
        for entry_id, payload in opening.entries
    ]
    last = parse_event_id(opening.entries[-1][0]) if opening.entries else resume_from
    finished = any(is_terminal(p.get("stage")) for _, p in opening.entries)
    return CatchUp(frames, last, finished, UPDATE_EVENT)


def end_frame(reason: str) -> bytes:
    return event_frame(END_EVENT, None, encode_json({"reason": reason}))


@dataclass(frozen=True)
class StreamLimits:
    heartbeat: float
    #: When the credential's stream must end (a unix time).
    expires_at: float
    #: Without a socket watcher, how often to look at the client's socket.
    check_every: float | None
    #: The `retry:` (ms) for a browser whose stream the server ends (shutdown, Redis lost).
    reconnect_retry_ms: Callable[[], int] | None = None
    #: An order's stream ends after its terminal event; an account's goes on.
    ends_at_terminal: bool = True


class StreamBody:
    """The body of one stream, as the WSGI iterable itself: `retry:` and the catch-up, then
    live frames, heartbeats and an ending; `subscriber.ended` says why it ended.

    An object, not a generator (nor werkzeug's wrappers around one): it is what a stream holds
    for as long as it is open, ten thousand at a time, so it keeps only what the live loop
    needs (the catch-up's frames go out with the first write and are not kept), and a stream
    waiting for its next frame sits two interpreter calls below the server's loop instead of
    five (gevent saves that C stack for every waiting stream). Serve it with
    `direct_passthrough`: the server calls `close()` when the response ends however it ends.
    """

    __slots__ = ("_first", "_last", "_limits", "_on_close", "_quiet_since", "_state", "subscriber")

    def __init__(
        self,
        subscriber: Subscriber,
        start: CatchUp,
        limits: StreamLimits,
        retry_ms: int,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.subscriber = subscriber
        self._limits = limits
        self._on_close = on_close
        self._first: tuple[bytes, str, int, bool] | None = (
            retry_frame(retry_ms) + b"".join(start.frames),
            start.kind,
            len(start.frames),
            start.finished,
        )
        self._last = start.last_id
        self._quiet_since = 0.0
        self._state = _OPEN

    def __iter__(self) -> StreamBody:
        return self

    def __next__(self) -> bytes:
        if self._first is not None:
            first, kind, count, finished = self._first
            self._first = None
            EVENTS_DELIVERED.labels(kind).inc(count)
            if finished:
                self.subscriber.end("terminal")
                self._state = _DONE
            self._quiet_since = time.monotonic()
            return first
        if self._state is not _OPEN:
            raise StopIteration
        chunk = self._wait()
        if chunk is None:
            self._state = _DONE
            raise StopIteration
        return chunk

    def _wait(self) -> bytes | None:
        """The next write: frames, a heartbeat or an end frame (then the stream is done), or
        None when the stream ends with nothing more to write."""
        subscriber, limits = self.subscriber, self._limits
        while True:
            remaining = limits.expires_at - time.time()
            if remaining <= 0:
                subscriber.end("credential-expired")
                self._state = _DONE
                return _end_frame("credential-expired")
            wait = min(limits.heartbeat - (time.monotonic() - self._quiet_since), remaining)
            if limits.check_every is not None:
                wait = min(wait, limits.check_every)
            fresh = _fresh(subscriber.take(max(0.0, wait)), self._last, limits.ends_at_terminal)
            if fresh:
                return self._write(fresh)
            if _client_left(subscriber, limits):
                subscriber.end("client-gone")
                return None
            if subscriber.ended:
                if subscriber.ended == "slow-client":  # its socket is already shut
                    return None
                self._state = _DONE
                return _end_frame(subscriber.ended, limits)
            if time.monotonic() - self._quiet_since >= limits.heartbeat:
                HEARTBEATS.inc()
                self._quiet_since = time.monotonic()
                return HEARTBEAT

    def _write(self, fresh: list[Frame]) -> bytes:
        # Everything that arrived while we slept, in one write: a burst costs one syscall.
        _delivered(fresh)
        self._last, self._quiet_since = fresh[-1].event_id, time.monotonic()
        if fresh[-1].terminal and self._limits.ends_at_terminal:
            self.subscriber.end("terminal")
            self._state = _DONE
        return b"".join(frame.data for frame in fresh)

    def close(self) -> None:
        """The response is over (written, cut or abandoned): let go of what the stream held,
        once."""
        self._state = _DONE
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


_OPEN = "open"
_DONE = "done"


def _fresh(frames: list[Frame], last: EventId | None, to_terminal: bool = True) -> list[Frame]:
    """The frames not sent yet (not at or below `last`, i.e. not in the catch-up), up to and
    including a terminal one when the stream ends there."""
    fresh = []
    for frame in frames:
        if last is not None and frame.event_id <= last:
            continue
        fresh.append(frame)
        if frame.terminal and to_terminal:
            break
    return fresh


#: What every live write counts: the labelled series looked up once (`labels()` takes a
#: lock), and both written a second at a time (`observability.tally`).
_DELIVERIES = Tally(EVENTS_DELIVERED.labels(UPDATE_EVENT), DELIVERY_SECONDS)


def _delivered(written: list[Frame]) -> None:
    published_at = written[0].published_at
    waited = None if published_at is None else max(0.0, time.time() - published_at)
    _DELIVERIES.add(len(written), waited)


def _end_frame(reason: str, limits: StreamLimits | None = None) -> bytes:
    EVENTS_DELIVERED.labels(END_EVENT).inc()
    if limits is not None and limits.reconnect_retry_ms and reason in _SPREAD_ENDINGS:
        return retry_frame(limits.reconnect_retry_ms()) + end_frame(reason)
    return end_frame(reason)


def _client_left(subscriber: Subscriber, limits: StreamLimits) -> bool:
    if subscriber.peer_activity or limits.check_every is not None:
        subscriber.peer_activity = False
        return peer_closed(subscriber.sock)
    return False
