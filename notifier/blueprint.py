"""The order event stream as a flask-sse blueprint: its envelope kept, its stream replaced.

`OrderEventsBlueprint` subclasses `flask_sse.ServerSentEventsBlueprint` and serves
`GET /<order_id>/events`. Where it departs from flask-sse, and why:

1. `redis` is the process's pooled client, not a new client and pool on every access.
2. `publish(order_id, update)` goes through the atomic history + state + PUBLISH path
   (flask-sse's `publish` would skip the history, and replay would then miss events).
3. `stream(order_id)` does not hold one Redis connection per browser: streams share the
   process's hub (one pub/sub connection). It sends `retry:` and a snapshot at once, honours
   `Last-Event-ID` (header, or `lastEventId` for a fresh page), heartbeats, ends after a
   terminal event, answers 204 to a client that already saw it (unless it saw `failed` and
   asks, with `waitForRetry=1`, to wait for an operator retry), and frees a closed client's
   resources without waiting for the order to publish again.
4. Who may watch is decided before the response starts by the `authorize` callback the app
   passes in (headers cannot change once streaming has begun).
5. When Redis (or whatever `authorize` needs) is down, the answer is a 200 carrying only a
   jittered `retry:`, never a 5xx: browsers give up on an EventSource after a 5xx.

Envelopes still have flask-sse's shape (`{"data", "id", "type"}`) and are read back through
`flask_sse.Message`.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Response, current_app, request
from flask_sse import ServerSentEventsBlueprint

from .connection import get_redis
from .events import UPDATE_EVENT
from .hub import HubUnavailable, Subscriber, get_hub
from .liveness import watch
from .metrics import STREAM_CLOSES, STREAM_OPENS, STREAM_RESUMES, STREAMS_OPEN, STREAMS_REFUSED
from .publish import publish
from .sse import retry_frame
from .stream import (
    AlreadyFinished,
    CatchUp,
    StreamLimits,
    UnknownOrder,
    catch_up,
    end_frame,
    follow,
)

log = logging.getLogger(__name__)

#: authorize(raw order id) -> (normalized order id, credential expiry as a unix time)
Authorize = Callable[[str], tuple[str, float]]

HEADERS = {
    "Cache-Control": "no-cache, no-store, no-transform",
    "X-Accel-Buffering": "no",
}


class TryLater(Exception):
    """Raised by `authorize` when a dependency is down: the browser should simply retry."""


class OrderEventsBlueprint(ServerSentEventsBlueprint):
    """flask-sse's blueprint, serving one stream per order through a shared hub."""

    def __init__(self, name: str, import_name: str, authorize: Authorize, **kwargs: Any) -> None:
        super().__init__(name, import_name, **kwargs)
        self.authorize = authorize
        self.add_url_rule("/<order_id>/events", endpoint="stream", view_func=self.stream)

    @property
    def redis(self) -> redis.Redis:
        return get_redis()

    def publish(self, order_id: str, update: dict[str, Any]) -> str:
        return publish(order_id, update)

    def stream(self, order_id: str) -> Response:
        try:
            order_id, expires_at = self.authorize(order_id)
        except (TryLater, redis.exceptions.RedisError) as exc:
            return self._retry_later(exc)
        config = current_app.config
        last_event_id = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
        sock = request.environ.get("gunicorn.socket")
        try:
            subscriber = get_hub().subscribe(order_id, config["SSE_QUEUE_LIMIT"], sock)
        except HubUnavailable as exc:
            return self._retry_later(exc)
        try:
            wait_for_retry = request.args.get("waitForRetry") == "1"
            start = catch_up(order_id, last_event_id, wait_for_retry)
        except AlreadyFinished:
            get_hub().unsubscribe(subscriber)
            STREAM_RESUMES.labels("finished").inc()
            return Response(status=204)
        except UnknownOrder:
            get_hub().unsubscribe(subscriber)
            raise  # the app answers 404
        except redis.exceptions.RedisError as exc:
            get_hub().unsubscribe(subscriber)
            return self._retry_later(exc)
        if last_event_id:
            STREAM_RESUMES.labels("replay" if start.kind == UPDATE_EVENT else "snapshot").inc()
        heartbeat = float(config["SSE_HEARTBEAT_SECONDS"])
        stop_watching = watch(sock, subscriber.poke)
        check_every = None if stop_watching or sock is None else heartbeat / 2
        limits = StreamLimits(heartbeat, expires_at, check_every)
        body = _stream_body(subscriber, start, limits, config["SSE_RETRY_MS"])
        response = Response(body, content_type="text/event-stream", headers=HEADERS)
        response.call_on_close(lambda: _release(subscriber, stop_watching))
        STREAM_OPENS.inc()
        STREAMS_OPEN.inc()
        return response

    def _retry_later(self, reason: BaseException) -> Response:
        """200 with a jittered `retry:` and nothing else: EventSource reconnects after a
        network error or the end of a 200 response, but gives up for good after a 5xx."""
        log.warning("stream deferred: %r", reason)
        STREAMS_REFUSED.inc()
        delay = int(current_app.config["SSE_RETRY_MS"] * random.uniform(1.0, 2.0))
        body = retry_frame(delay) + end_frame("unavailable")
        return Response(body, content_type="text/event-stream", headers=HEADERS)


def _stream_body(
    subscriber: Subscriber, start: CatchUp, limits: StreamLimits, retry_ms: int
) -> Iterator[bytes]:
    # A chain, not a generator: a generator's frame would keep `start` alive for the stream.
    return itertools.chain((retry_frame(retry_ms),), follow(subscriber, start, limits))


def _release(subscriber: Subscriber, stop_watching: Callable[[], None] | None) -> None:
    if stop_watching is not None:
        stop_watching()
    get_hub().unsubscribe(subscriber)
    # A stream the server cut while writing (the client went away mid-write) has no reason.
    STREAM_CLOSES.labels(subscriber.ended or "client-gone").inc()
    STREAMS_OPEN.dec()
