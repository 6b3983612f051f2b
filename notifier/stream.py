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
from collections.abc import Iterator
from dataclasses import dataclass

from .events import SNAPSHOT_EVENT, UPDATE_EVENT, Stage, is_terminal
from .hub import Frame, Subscriber
from .liveness import peer_closed
from .metrics import DELIVERY_SECONDS, EVENTS_DELIVERED, HEARTBEATS
from .sse import HEARTBEAT, EventId, encode_json, event_frame, parse_event_id
from .state import read_replay, read_snapshot

END_EVENT = "stream.end"


class UnknownOrder(LookupError):
    """Raised when the order was never submitted: there is nothing to stream."""


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


def catch_up(order_id: str, last_event_id: str | None, wait_for_retry: bool = False) -> CatchUp:
    """The snapshot, or the events after `last_event_id` when the history still holds it.

    A client that already saw the terminal event gets AlreadyFinished (204), unless that event
    was `failed` and it asked to wait for an operator retry: then nothing is sent yet and the
    stream stays open for the next run's events.
    """
    resume_from = parse_event_id(last_event_id)
    if resume_from is not None and last_event_id is not None:
        replay = read_replay(order_id, last_event_id.strip())
        if replay is not None:
            stage = (replay.current or {}).get("stage")
            if not replay.entries and is_terminal(stage):
                if wait_for_retry and stage == Stage.FAILED:
                    return CatchUp([], resume_from, False, UPDATE_EVENT)
                raise AlreadyFinished(order_id)
            frames = [
                event_frame(UPDATE_EVENT, entry_id, encode_json(payload))
                for entry_id, payload in replay.entries
            ]
            last = parse_event_id(replay.entries[-1][0]) if replay.entries else resume_from
            finished = any(is_terminal(p.get("stage")) for _, p in replay.entries)
            return CatchUp(frames, last, finished, UPDATE_EVENT)
    snapshot = read_snapshot(order_id)
    if snapshot is None:
        raise UnknownOrder(order_id)
    frame = event_frame(SNAPSHOT_EVENT, snapshot.event_id, encode_json(snapshot.body))
    finished = is_terminal(snapshot.body.get("stage"))
    return CatchUp([frame], parse_event_id(snapshot.event_id), finished)


def end_frame(reason: str) -> bytes:
    return event_frame(END_EVENT, None, encode_json({"reason": reason}))


@dataclass(frozen=True)
class StreamLimits:
    heartbeat: float
    expires_at: float
    #: Without a socket watcher, how often to look at the client's socket.
    check_every: float | None


def follow(subscriber: Subscriber, start: CatchUp, limits: StreamLimits) -> Iterator[bytes]:
    """The body of a stream after its `retry:` line; `subscriber.ended` says why it ended."""
    if start.frames:
        yield b"".join(start.frames)
    EVENTS_DELIVERED.labels(start.kind).inc(len(start.frames))
    if start.finished:
        subscriber.end("terminal")
        return
    # Hold only the last id from here on: the catch-up's frames (a whole history, after a
    # long outage) would otherwise stay in memory for as long as the stream is open.
    last = start.last_id
    del start
    quiet_since = time.monotonic()
    while True:
        remaining = limits.expires_at - time.time()
        if remaining <= 0:
            subscriber.end("credential-expired")
            yield _end_frame("credential-expired")
            return
        wait = min(limits.heartbeat - (time.monotonic() - quiet_since), remaining)
        if limits.check_every is not None:
            wait = min(wait, limits.check_every)
        fresh = _fresh(subscriber.take(max(0.0, wait)), last)
        if fresh:
            # Everything that arrived while we slept, in one write: a burst costs one syscall.
            yield b"".join(frame.data for frame in fresh)
            _delivered(fresh)
            last, quiet_since = fresh[-1].event_id, time.monotonic()
            if fresh[-1].terminal:
                subscriber.end("terminal")
                return
        if _client_left(subscriber, limits):
            subscriber.end("client-gone")
            return
        if subscriber.ended:
            if subscriber.ended != "slow-client":  # its socket is already shut
                yield _end_frame(subscriber.ended)
            return
        if time.monotonic() - quiet_since >= limits.heartbeat:
            yield HEARTBEAT
            HEARTBEATS.inc()
            quiet_since = time.monotonic()


def _fresh(frames: list[Frame], last: EventId | None) -> list[Frame]:
    """The frames not sent yet (not at or below `last`, i.e. not in the catch-up), up to and
    including a terminal one."""
    fresh = []
    for frame in frames:
        if last is not None and frame.event_id <= last:
            continue
        fresh.append(frame)
        if frame.terminal:
            break
    return fresh


def _delivered(written: list[Frame]) -> None:
    # Once per write, not per event: each metric update in multiprocess mode costs a lock
    # and a getpid(), which a burst to ten thousand streams would feel.
    EVENTS_DELIVERED.labels(UPDATE_EVENT).inc(len(written))
    if written[0].published_at is not None:
        DELIVERY_SECONDS.observe(max(0.0, time.time() - written[0].published_at))


def _end_frame(reason: str) -> bytes:
    EVENTS_DELIVERED.labels(END_EVENT).inc()
    return end_frame(reason)


def _client_left(subscriber: Subscriber, limits: StreamLimits) -> bool:
    if subscriber.peer_activity or limits.check_every is not None:
        subscriber.peer_activity = False
        return peer_closed(subscriber.sock)
    return False
