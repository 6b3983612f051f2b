"""The order event stream as a flask-sse blueprint: its envelope kept, its stream replaced.

`OrderEventsBlueprint` subclasses `flask_sse.ServerSentEventsBlueprint` and serves
`GET /<order_id>/events`, and `GET /events` for every order of the caller's account (the same
machinery, with `account.py`'s opening and catch-up, and no ending at an order's terminal
event). Where it departs from flask-sse, and why:

1. `redis` is the process's pooled client, not a new client and pool on every access.
2. `publish(order_id, update)` goes through the atomic history + state + PUBLISH path
   (flask-sse's `publish` would skip the history, and replay would then miss events).
3. `stream(order_id)` does not hold one Redis connection per browser: streams share the
   process's hub (one pub/sub connection). It sends `retry:` and a snapshot at once, honours
   `Last-Event-ID` (header, or `lastEventId` for a fresh page), heartbeats, ends after a
   terminal event, answers 204 to a client that already saw it (unless it saw `failed` and
   asks, with `waitForRetry=1`, to wait for an operator retry), and frees a closed client's
   resources without waiting for the order to publish again.
4. Who may watch is decided before the response starts, by two callbacks the app passes in
   (headers cannot change once streaming has begun): `authenticate` checks the credential
   before anything is read, `authorize` decides on what one round trip read once the stream
   was subscribed (the order's owner beside its catch-up, and the account's stream slot:
   see `opening.py`).
5. When Redis (or whatever `authorize` needs) is down, the answer is a 200 carrying only a
   jittered `retry:`, never a 5xx: browsers give up on an EventSource after a 5xx.
6. Streams are admitted by the process's `Admission` (see `admission.py`): a burst opens a
   few at a time instead of all at once, and a process at its limit sheds new streams before
   checking anything, with a `retry:` spread over a wide window.

Envelopes still have flask-sse's shape (`{"data", "id", "type"}`) and are read back through
`flask_sse.Message`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import greenlet
import redis
from flask import Response, current_app, request
from flask_sse import ServerSentEventsBlueprint

from notifier.connection import get_redis
from notifier.events import UPDATE_EVENT
from notifier.publish import publish
from notifier.state import read_summary

from .account import AccountOpening, account_catch_up, read_account_opening
from .admission import Admission, Overloaded
from .collector import process_freezer
from .hub import HubUnavailable, Subscriber, process_hub
from .liveness import watch
from .metrics import (
    STREAM_CLOSES,
    STREAM_OPENS,
    STREAM_RESUMES,
    STREAMS_OPEN,
    STREAMS_REFUSED,
    STREAMS_SHED,
)
from .opening import Opening, read_opening
from .quota import StreamQuota
from .sse import EventId, parse_event_id, retry_frame
from .stream import AlreadyFinished, CatchUp, StreamBody, StreamLimits, catch_up, end_frame

log = logging.getLogger(__name__)

HEADERS = {
    "Cache-Control": "no-cache, no-store, no-transform",
    "X-Accel-Buffering": "no",
}


@dataclass(frozen=True)
class StreamRequest:
    """A stream someone asked for, their credential checked; nothing read from Redis yet."""

    #: The order watched; for an account stream, the account.
    order_id: str
    #: When the stream must end (a unix time): its credential's deadline.
    ends_at: float
    #: Whose stream slots it takes (a customer account), or None when it is not counted.
    quota_key: str | None = None
    #: The caller, as the app knows it (opaque here).
    caller: Any = None


#: authenticate(raw order id) -> the request; raises to refuse (the app's 400/401).
Authenticate = Callable[[str], StreamRequest]
#: authorize(request, what was read) -> None; raises to refuse (403/404/429, or TryLater).
Authorize = Callable[[StreamRequest, Opening], None]
#: authenticate_account() -> the request for the caller's account (its id as `order_id`).
AuthenticateAccount = Callable[[], StreamRequest]
#: authorize_account(request, what was read) -> None; raises to refuse (429).
AuthorizeAccount = Callable[[StreamRequest, AccountOpening], None]


@dataclass(frozen=True)
class _Kind:
    """What differs between an order's stream and an account's."""

    subscribe: Callable[[StreamRequest, int, Any], Subscriber]
    read: Callable[[StreamRequest, EventId | None], Any]
    authorize: Callable[[StreamRequest, Any], None]
    catch_up: Callable[[StreamRequest, Any, EventId | None], CatchUp]
    ends_at_terminal: bool


class TryLater(Exception):
    """Raised by `authorize` when a dependency is down: the browser should simply retry."""


class OrderEventsBlueprint(ServerSentEventsBlueprint):
    """flask-sse's blueprint, serving one stream per order through a shared hub."""

    def __init__(
        self,
        name: str,
        import_name: str,
        authenticate: Authenticate,
        authorize: Authorize,
        authenticate_account: AuthenticateAccount | None = None,
        authorize_account: AuthorizeAccount | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, import_name, **kwargs)
        self.authenticate = authenticate
        self.authorize = authorize
        self._order = _Kind(
            subscribe=lambda asked, limit, sock: process_hub().subscribe(
                asked.order_id, limit, sock
            ),
            read=self._read,
            authorize=self.authorize,
            catch_up=lambda asked, opening, resume: catch_up(
                asked.order_id, _with_summary(asked, opening), resume, _waits_for_retry()
            ),
            ends_at_terminal=True,
        )
        self.add_url_rule("/<order_id>/events", endpoint="stream", view_func=self.stream)
        if authenticate_account is not None and authorize_account is not None:
            self.authenticate_account = authenticate_account
            self._account = _Kind(
                subscribe=lambda asked, limit, sock: process_hub().subscribe_account(
                    asked.order_id, limit, sock
                ),
                read=self._read_account,
                authorize=authorize_account,
                catch_up=lambda _asked, opening, _resume: account_catch_up(opening),
                ends_at_terminal=False,
            )
            self.add_url_rule("/events", endpoint="account_stream", view_func=self.account_stream)

    @property
    def redis(self) -> redis.Redis:
        return get_redis()

    def publish(self, order_id: str, update: dict[str, Any]) -> str:
        return publish(order_id, update)

    def stream(self, order_id: str) -> Response:
        return self._admitted(lambda: self.authenticate(order_id), self._order)

    def account_stream(self) -> Response:
        """Every order of the caller's account, in one stream (never 204: it does not end
        with an order)."""
        return self._admitted(self.authenticate_account, self._account)

    def _admitted(self, authenticate: Callable[[], StreamRequest], kind: _Kind) -> Response:
        admission: Admission = current_app.extensions["stream_admission"]
        try:
            with admission.opening_stream():
                return _aside(self._open, admission, authenticate, kind)
        except Overloaded:
            # Before any credential is checked: shedding must cost next to nothing.
            STREAMS_SHED.inc()
            return _come_back(admission.shed_retry_ms(), "overloaded")

    def _open(
        self, admission: Admission, authenticate: Callable[[], StreamRequest], kind: _Kind
    ) -> Response:
        asked = authenticate()
        sock = request.environ.get("gunicorn.socket")
        limit = current_app.config["SSE_QUEUE_LIMIT"]
        try:
            # Subscribed before anything is read: nothing published meanwhile is missed.
            subscriber = kind.subscribe(asked, limit, sock)
        except HubUnavailable as exc:
            return self._retry_later(admission, exc)
        slot: Any = None
        resume = _resume_from()
        try:
            slot = opening = kind.read(asked, resume)
            kind.authorize(asked, opening)
            start = kind.catch_up(asked, opening, resume)
        except AlreadyFinished:
            _abandon(subscriber, slot)
            STREAM_RESUMES.labels("finished").inc()
            return Response(status=204)
        except (TryLater, redis.exceptions.RedisError) as exc:
            _abandon(subscriber, slot)
            return self._retry_later(admission, exc)
        except BaseException:
            _abandon(subscriber, slot)
            raise
        return self._serve(admission, asked, subscriber, start, _release_of(opening), kind)

    def _read(self, asked: StreamRequest, resume: EventId | None) -> Opening:
        quota: StreamQuota = current_app.extensions["stream_quota"]
        return read_opening(asked.order_id, _id_text(resume), quota, asked.quota_key)

    def _read_account(self, asked: StreamRequest, resume: EventId | None) -> AccountOpening:
        quota: StreamQuota = current_app.extensions["stream_quota"]
        return read_account_opening(asked.order_id, _id_text(resume), quota, asked.quota_key)

    def _serve(
        self,
        admission: Admission,
        asked: StreamRequest,
        subscriber: Subscriber,
        start: CatchUp,
        release: Callable[[], None] | None,
        kind: _Kind,
    ) -> Response:
        config = current_app.config
        if _raw_last_event_id():
            STREAM_RESUMES.labels("replay" if start.kind == UPDATE_EVENT else "snapshot").inc()
        heartbeat = float(config["SSE_HEARTBEAT_SECONDS"])
        stop_watching = watch(subscriber.sock, subscriber.poke)
        check_every = None if stop_watching or subscriber.sock is None else heartbeat / 2
        limits = StreamLimits(
            heartbeat,
            asked.ends_at,
            check_every,
            admission.reconnect_retry_ms,
            ends_at_terminal=kind.ends_at_terminal,
        )
        closing = _Closing(admission, subscriber, stop_watching, release)
        body = StreamBody(subscriber, start, limits, config["SSE_RETRY_MS"], closing)
        # The body is the WSGI iterable as it is (no wrappers): the server closes it.
        response = Response(
            body, content_type="text/event-stream", headers=HEADERS, direct_passthrough=True
        )
        admission.opened()
        process_freezer().streams_opened()
        STREAM_OPENS.inc()
        STREAMS_OPEN.inc()
        return response

    def _retry_later(self, admission: Admission, reason: BaseException) -> Response:
        """200 with a jittered `retry:` and nothing else: EventSource reconnects after a
        network error or the end of a 200 response, but gives up for good after a 5xx."""
        log.warning("stream deferred: %r", reason)
        STREAMS_REFUSED.inc()
        return _come_back(admission.reconnect_retry_ms(), "unavailable")


def _aside(open_stream: Callable[..., Response], *args: Any) -> Response:
    """Open the stream on a greenlet of its own, which ends once the stream is open.

    Opening runs deep (credentials, the pipeline to Redis, the Lua script) and waits on
    sockets there, and the pages of its interpreter stack that it touches stay resident for
    as long as its greenlet lives. The connection's greenlet lives as long as the stream, so
    the deep part runs on one that ends when the stream is open. Outside gevent (threads, the
    test client) it runs in place.
    """
    if not _under_gevent():
        return open_stream(*args)
    context = contextvars.copy_context()  # Flask's request and app contexts
    return greenlet.greenlet(lambda: context.run(open_stream, *args)).switch()


def _under_gevent() -> bool:
    try:
        from gevent.monkey import is_module_patched
    except ImportError:
        return False
    return bool(is_module_patched("socket"))


def _raw_last_event_id() -> str | None:
    return request.headers.get("Last-Event-ID") or request.args.get("lastEventId")


def _resume_from() -> EventId | None:
    return parse_event_id(_raw_last_event_id())


def _with_summary(asked: StreamRequest, opening: Opening) -> Opening:
    """The opening with what was ordered: a lookup that `authorize` just made (an order not
    submitted yet) recorded it after the opening was read."""
    if opening.summary is not None:
        return opening
    return dataclasses.replace(opening, summary=read_summary(asked.order_id))


def _id_text(event_id: EventId | None) -> str | None:
    return "{}-{}".format(*event_id) if event_id is not None else None


def _waits_for_retry() -> bool:
    return request.args.get("waitForRetry") == "1"


def _release_of(opening: Opening | AccountOpening | None) -> Callable[[], None] | None:
    slot = opening.slot if opening is not None else None
    return slot if callable(slot) else None


def _abandon(subscriber: Subscriber, opening: Opening | AccountOpening | None) -> None:
    """A stream that will not be served: let go of its subscription and its slot."""
    process_hub().unsubscribe(subscriber)
    release = _release_of(opening)
    if release is not None:
        release()


def _come_back(retry_ms: int, reason: str) -> Response:
    body = retry_frame(retry_ms) + end_frame(reason)
    return Response(body, content_type="text/event-stream", headers=HEADERS)


class _Closing:
    """What a stream lets go of when its response ends (a small object rather than a closure:
    every open stream holds one)."""

    __slots__ = ("admission", "release", "stop_watching", "subscriber")

    def __init__(
        self,
        admission: Admission,
        subscriber: Subscriber,
        stop_watching: Callable[[], None] | None,
        release: Callable[[], None] | None,
    ) -> None:
        self.admission = admission
        self.subscriber = subscriber
        self.stop_watching = stop_watching
        self.release = release

    def __call__(self) -> None:
        if self.stop_watching is not None:
            self.stop_watching()
        process_hub().unsubscribe(self.subscriber)
        if self.release is not None:
            self.release()  # never raises: the slot's removal from Redis is done in the background
        self.admission.closed()
        # A stream the server cut while writing (the client went away mid-write) has no reason.
        STREAM_CLOSES.labels(self.subscriber.ended or "client-gone").inc()
        STREAMS_OPEN.dec()
        _no_more_requests(self.subscriber.sock)


def _no_more_requests(sock: Any) -> None:
    """After a stream, its connection closes instead of waiting for another request.

    The response is complete when the server closes its body, so only the reading side is
    shut: the server then finds no next request and closes the connection at once. Kept
    alive, each of the ten thousand connections a burst's terminal events end cost a request
    parser and a keep-alive timer until the client left. A browser reconnects over a new one.
    """
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
