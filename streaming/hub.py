"""One Redis pub/sub connection per web process, fanned out to every local stream.

A reader (a greenlet under gevent, a thread otherwise) owns the connection: it waits for the
socket to become readable, reads what it holds and parses the replies itself (`resp.py`), turns
each flask-sse envelope into an SSE frame once, and hands the same frame to every local
subscriber of that order. An order's channel is SUBSCRIBEd when its first local stream opens
and UNSUBSCRIBEd a moment after its last one closes (with the others that closed meanwhile, in
one command: a batch of orders ends together); `subscribe()` returns only once Redis has
confirmed the subscription, so a stream that reads the order's history after subscribing cannot
miss an event published in between.

Delivery never blocks the reader: each subscriber has a bounded queue, and a subscriber that
falls behind is ended (and its socket shut, so a write stuck on a client that stopped reading
is released); its browser reconnects and resumes by event id.

If the connection fails, every local stream is ended at once (browsers reconnect and replay
what they missed from the history); the next stream to subscribe opens a new connection.
Nothing is retried silently underneath us: a quiet reconnect would hide a gap in live
delivery.

On a Redis Cluster (`REDIS_CLUSTER=1`) channels are shard channels, each in its order's (or
account's) slot: the hub keeps one connection and one reader per node that serves a channel
it needs (SSUBSCRIBE there), never polling the nodes in turn. A node that fails ends the
streams of its channels only; a slot that moves (Redis tells its subscribers with an
unrequested SUNSUBSCRIBE) ends the streams of that channel. Either way the slot map is read
again, and the browsers resume by event id from the history, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from flask_sse import Message
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

import settings
from notifier import keys
from notifier.connection import cluster_client, node_options
from notifier.events import is_terminal, parse_timestamp

from . import alarm
from .metrics import SLOW_CLIENT_DISCONNECTS
from .resp import Reply, ReplyReader
from .sse import EventId, encode_json, event_frame, parse_event_id

log = logging.getLogger(__name__)
T = TypeVar("T")

_PING_EVERY = 30.0
#: Redis confirms a healthy subscription in milliseconds, even in a burst (subscriptions are
#: batched); this only bounds the wait when Redis is up but not answering.
_CONFIRM_TIMEOUT = 15.0
#: Messages the reader handles before letting the streams write what it delivered.
_BATCH = 64
#: The most the reader takes from its socket at once (a burst's 25,000 messages are 5 MB).
_READ_SIZE = 256 * 1024
#: How long a channel's UNSUBSCRIBE waits to share one command with others' (seconds). When
#: a batch of orders completes, their streams end within moments of each other: one command
#: (and one wake-up of the reader) for all of them instead of one each. Meanwhile the channel's
#: messages are read and dropped, as after the UNSUBSCRIBE; a SUBSCRIBE is never held back.
GATHER_LEAVING = 0.1


class HubUnavailable(RuntimeError):
    """Raised when a stream cannot subscribe: Redis is unreachable or the process is stopping."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A live event, encoded once and shared by every subscriber of the order."""

    event_id: EventId
    data: bytes
    terminal: bool
    #: When the update was published (its payload timestamp), for delivery latency.
    published_at: float | None = None


class Subscriber:
    """One open stream's mailbox: written by the reader, drained by the stream."""

    __slots__ = (
        "__weakref__",
        "_alarm_at",
        "_deadline",
        "_frames",
        "_wakeup",
        "channel",
        "ended",
        "limit",
        "order_id",
        "peer_activity",
        "sock",
    )

    def __init__(self, order_id: str, channel: str, limit: int, sock: Any = None) -> None:
        self.order_id = order_id
        self.channel = channel
        self.limit = limit
        self.sock = sock
        self.ended: str | None = None
        self.peer_activity = False
        # A list, not a deque: an empty deque is 600 bytes, and most mailboxes are empty
        # most of the time. `append` and `pop(0)` are each atomic under threads too.
        self._frames: list[Frame] = []
        self._wakeup = threading.Event()
        #: When the current (or last) long wait must end, and when the clock's entry for
        #: this subscriber comes due (None: it has none), monotonic times.
        self._deadline = 0.0
        self._alarm_at: float | None = None

    def deliver(self, frame: Frame) -> None:
        if self.ended:
            return
        if len(self._frames) >= self.limit:
            SLOW_CLIENT_DISCONNECTS.inc()
            self.end("slow-client", release_socket=True)
            return
        self._frames.append(frame)
        self._wakeup.set()

    def end(self, reason: str, release_socket: bool = False) -> None:
        if self.ended is None:
            self.ended = reason
        if release_socket and self.sock is not None:
            _shutdown(self.sock)
        self._wakeup.set()

    def poke(self) -> None:
        """The client's socket became readable: the stream should check whether it left."""
        self.peer_activity = True
        self._wakeup.set()

    def take(self, timeout: float) -> list[Frame]:
        """Wait up to `timeout` for frames (or an end, or a poke) and return what arrived.

        Woken by a frame, it first lets the reader finish what it already read (one yield):
        an order's events come in bursts, and a stream that writes them as one costs one
        send instead of several; the hub's reader does not wait for it meanwhile.
        """
        if timeout >= alarm.LONG_WAIT and _on_the_clock():
            self._wait_on_the_clock(timeout)
        else:
            self._wakeup.wait(timeout)
        if self._frames and not self._frames[-1].terminal:
            time.sleep(0)  # a yield under gevent (a GIL release under threads)
        self._wakeup.clear()  # clear before draining: a frame appended now sets it again
        return _take_all(self._frames)

    def _wait_on_the_clock(self, timeout: float) -> None:
        """Wait for a frame, an end or a poke, or until `timeout` passes, with no timer of
        its own: the process's clock wakes it (`streaming/alarm.py`)."""
        self._deadline = deadline = time.monotonic() + timeout
        if self._alarm_at is None or deadline < self._alarm_at:
            self._alarm_at = deadline
            alarm.process_alarm().wake_at(self, deadline)
        self._wakeup.wait()

    def ring(self, deadline: float) -> None:
        """The clock's entry for `deadline` came due (`alarm.Sleeper`)."""
        if self._alarm_at != deadline:
            return  # superseded by a sooner entry, which is this subscriber's entry now
        self._alarm_at = None
        if self.ended:
            return
        if self._deadline > deadline:  # woken early since, and waiting longer now
            self._alarm_at = self._deadline
            alarm.process_alarm().wake_at(self, self._deadline)
        else:
            self._wakeup.set()


_clock: bool | None = None


def _on_the_clock() -> bool:
    """Whether long waits go on the process's clock (asked once: gunicorn's gevent worker
    patches threading before it loads the app)."""
    global _clock
    if _clock is None:
        _clock = alarm.in_use()
    return _clock


def _take_all(queue: deque[T] | list[T]) -> list[T]:
    """Remove and return what `queue` holds, oldest first: the hub's one way to drain a deque
    or list that another greenlet or thread appends to (its single consumer calls this).

    Each `popleft` (`pop(0)`) is atomic, and the producer's `append` needs no lock, so nothing
    is lost under real threads: `list(queue)` then `queue.clear()` dropped whatever was
    appended between the two. Only what was there when we counted is taken (an item appended
    meanwhile waits for the next call), so a producer that keeps up cannot keep its consumer
    draining.
    """
    count = len(queue)
    if isinstance(queue, list):
        if count == 0:
            return []
        return [queue.pop(0) for _ in range(count)]
    return [queue.popleft() for _ in range(count)]


def _shutdown(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@dataclass
class _Pending:
    """SUBSCRIBE commands sent for a channel and not yet confirmed."""

    outstanding: int = 0
    confirmed: threading.Event = field(default_factory=threading.Event)


class _Link:
    """One pub/sub connection and the commands waiting for its reader to send them.

    Only the reader touches the connection's socket: redis-py keeps per-socket timeouts that
    two greenlets (or threads) using it at once would trample. Streams queue their SUBSCRIBE
    and UNSUBSCRIBE here and wake the reader through a socket pair; the queue falls due when
    its soonest command asks (a SUBSCRIBE at once, an UNSUBSCRIBE a moment later), and is
    then sent whole, in order.
    """

    def __init__(self, client: redis.Redis, node: str = "") -> None:
        # Keep the client: when it is garbage-collected it disconnects its pool, our
        # pub/sub connection included.
        self.client = client
        #: The cluster node it reads ("host:port"), "" on one Redis.
        self.node = node
        self.pubsub = client.pubsub()
        # Connects now, and keeps the connection in subscribed mode, where redis-py reads it
        # (plain pub/sub: any cluster node takes it).
        self.pubsub.subscribe(f"{keys.namespace()}:sse:__hub__")
        # redis-py writes our commands to the connection; its replies are read and parsed
        # here (`streaming.resp`). redis-py keeps no public handle on the socket.
        sock: socket.socket | None = getattr(self.pubsub.connection, "_sock", None)
        if sock is None:  # subscribe() connects or raises; this is its contract, checked
            raise redis.exceptions.ConnectionError("the hub's pub/sub connection is not open")
        self.sock: socket.socket = sock
        self.replies = ReplyReader()
        self.commands: deque[tuple[str, str]] = deque()
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.wake_writer.setblocking(False)
        self.awake = False
        #: When the queued commands must go (a monotonic time), None when none wait.
        self._due_at: float | None = None
        self._due_lock = threading.Lock()

    def decrypted(self) -> int:
        """Bytes a TLS connection has decrypted and not handed over yet (none without TLS)."""
        pending = getattr(self.sock, "pending", None)
        return pending() if pending is not None else 0

    def request(self, command: str, channel: str, after: float = 0.0) -> bool:
        """Queue a command for the reader to send within `after` seconds (callers hold the
        hub's lock: order matters); True when the queue falls due sooner than the reader
        knew, so the caller must `wake()` it."""
        due = time.monotonic() + after
        with self._due_lock:
            self.commands.append((command, channel))
            if self._due_at is not None and self._due_at <= due:
                return False
            self._due_at = due
            return True

    def wake(self) -> None:
        """Wake the reader, once per batch and without ever blocking (call outside locks)."""
        if not self.awake:
            self.awake = True
            # Each byte costs a kernel buffer: one per batch, and a full pipe means awake.
            with contextlib.suppress(OSError):
                self.wake_writer.send(b"!")

    def woken(self) -> None:
        """The reader saw the wake-up: drain its bytes, then reset the flag, before it looks
        at the queue. A byte sent after the reset stays in the pipe and wakes it again.
        (Draining after the reset lost wake-ups: a byte sent after it was swallowed while its
        sender's flag stayed set, so later commands sent none, and under threads
        subscriptions hung.)"""
        with contextlib.suppress(OSError):
            while self.wake_reader.recv(4096):
                pass
        self.awake = False

    def wait_for(self, longest: float) -> float:
        """How long the reader may wait for the sockets before the queue falls due."""
        # Read without the lock (the reader asks every turn): a request that makes the queue
        # due sooner than this read says also wakes the reader.
        due = self._due_at
        return longest if due is None else min(longest, max(0.0, due - time.monotonic()))

    def take_due(self) -> list[tuple[str, str]]:
        """Every queued command, oldest first, once the queue has fallen due; else none."""
        if self._due_at is None:  # the usual case, read without the lock (as in `wait_for`)
            return []
        with self._due_lock:
            if self._due_at is None or self._due_at > time.monotonic():
                return []
            self._due_at = None
            return _take_all(self.commands)

    def close(self) -> None:
        for closable in (self.pubsub, self.client, self.wake_reader, self.wake_writer):
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                closable.close()


class Hub:
    """The process's shared subscription to per-order channels."""

    def __init__(
        self, url: str, cluster: bool = False, gather_leaving: float = GATHER_LEAVING
    ) -> None:
        self.url, self.cluster = url, cluster
        self._gather_leaving = gather_leaving
        self._lock = threading.Lock()
        self._channels: dict[str, tuple[Subscriber, ...]] = {}
        self._pending: dict[str, _Pending] = {}
        #: Each subscribed channel's link (its node on a cluster; "" on one Redis).
        self._where: dict[str, str] = {}
        #: Unsubscribes sent and not confirmed yet, per channel: any other is a slot move.
        self._leaving: dict[str, int] = {}
        self._links: dict[str, _Link] = {}
        self._slots: RedisCluster | None = None
        #: The slot map must be read again before the next channel is placed.
        self._slots_stale = False
        self._stopping = False
        self._commands = ("ssubscribe", "sunsubscribe") if cluster else ("subscribe", "unsubscribe")

    # --- what streams call -----------------------------------------------------------------

    def subscribe(self, order_id: str, limit: int, sock: Any = None) -> Subscriber:
        """A confirmed subscription to `order_id`'s events."""
        return self.subscribe_channel(keys.channel(order_id), order_id, limit, sock)

    def subscribe_account(self, account_id: str, limit: int, sock: Any = None) -> Subscriber:
        """A confirmed subscription to the events of every order of `account_id`."""
        return self.subscribe_channel(keys.account_channel(account_id), account_id, limit, sock)

    def subscribe_channel(
        self, channel: str, name: str, limit: int, sock: Any = None
    ) -> Subscriber:
        """A confirmed subscription to `channel` (`name`: whose it is, for the stream)."""
        subscriber = Subscriber(name, channel, limit, sock)
        with self._lock:
            current = self._channels.get(channel, ())
            node = self._where[channel] if current else self._node_of(channel)
            try:
                link = self._ensure_link(node)
            except HubUnavailable:
                self._reread_slots()  # a node gone (mid-failover): the next try asks afresh
                raise
            self._channels[channel] = (*current, subscriber)
            wake = False
            if not current:
                self._where[channel] = node
                self._pending.setdefault(channel, _Pending()).outstanding += 1
                wake = link.request(self._commands[0], channel)
            pending = self._pending.get(channel)
        if wake:
            link.wake()  # outside the lock: the reader needs it too
        if pending is not None and not pending.confirmed.wait(_CONFIRM_TIMEOUT):
            self.unsubscribe(subscriber)
            raise HubUnavailable("Redis did not confirm the subscription")
        if subscriber.ended:  # the connection failed while we waited
            self.unsubscribe(subscriber)
            raise HubUnavailable("Redis connection lost while subscribing")
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget `subscriber`; safe to call more than once."""
        channel = subscriber.channel
        with self._lock:
            current = self._channels.get(channel, ())
            if subscriber not in current:
                return
            remaining = tuple(s for s in current if s is not subscriber)
            if remaining:
                self._channels[channel] = remaining
                return
            del self._channels[channel]
            link = self._links.get(self._where.pop(channel, ""))
            if link is None:
                return
            self._leaving[channel] = self._leaving.get(channel, 0) + 1
            wake = link.request(self._commands[1], channel, after=self._gather_leaving)
        if wake:
            link.wake()

    def shutdown(self, reason: str = "shutdown") -> None:
        """End every local stream and refuse new ones (SIGTERM)."""
        with self._lock:
            self._stopping = True
            subscribers = [s for subs in self._channels.values() for s in subs]
        for subscriber in subscribers:
            subscriber.end(reason)

    # --- connection ------------------------------------------------------------------------

    def _node_of(self, channel: str) -> str:
        """The link a new channel goes on: on a cluster, the node serving its slot now."""
        if not self.cluster:
            return ""
        try:
            if self._slots is None:
                self._slots = cluster_client(self.url, decode_responses=True)
            slots = self._slots
            if self._slots_stale:
                self._slots_stale = False
                slots.nodes_manager.initialize()
            node = slots.nodes_manager.get_node_from_slot(slots.keyslot(channel))
        except (
            redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
        ) as exc:
            raise HubUnavailable(f"cannot reach the cluster: {exc.__class__.__name__}") from None
        return f"{node.host}:{node.port}"

    def _ensure_link(self, node: str) -> _Link:
        if self._stopping:
            raise HubUnavailable("the process is shutting down")
        link = self._links.get(node)
        if link is None:
            try:
                link = self._links[node] = _Link(self._connect(node), node)
            except (redis.exceptions.RedisError, OSError) as exc:
                raise HubUnavailable(f"cannot reach Redis: {exc.__class__.__name__}") from None
            reader = threading.Thread(target=self._run, args=(link,), daemon=True)
            reader.start()
        return link

    def _connect(self, node: str) -> redis.Redis:
        # No retries underneath us: a failure must surface so we can end the streams.
        options: dict[str, Any] = {
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": 5,
            "client_name": hub_client_name(),  # so operators can spot it in CLIENT LIST
            # RESP2 (redis-py 8 asks for RESP3): the replies `streaming.resp` reads.
            "protocol": 2,
        }
        if node:
            host, port = node.rsplit(":", 1)
            return redis.Redis(host=host, port=int(port), **node_options(self.url), **options)
        return redis.Redis.from_url(self.url, **options)

    def _reread_slots(self) -> None:
        """After a node failed or a slot moved: read the slot map again before the next
        channel is placed (not now: mid-failover the map still names the dead node)."""
        self._slots_stale = self.cluster

    # --- the reader ------------------------------------------------------------------------

    def _run(self, link: _Link) -> None:
        waiter = _Waiter([link.sock, link.wake_reader])
        try:
            while not self._stopping:
                timeout = link.wait_for(_PING_EVERY)
                ready = waiter.wait(timeout)
                if link.sock.fileno() in ready:
                    self._drain(link)
                if link.wake_reader.fileno() in ready:
                    link.woken()
                if commands := link.take_due():
                    self._send_requests(link, commands)
                elif not ready and timeout == _PING_EVERY:
                    link.pubsub.ping()  # an idle connection still proves it is alive
        except (redis.exceptions.RedisError, OSError, AttributeError) as exc:
            log.warning("pub/sub connection lost (%s); ending local streams", exc)
        except Exception:  # a reader that dies silently would leave every stream waiting
            log.exception("pub/sub reader failed; ending local streams")
        finally:
            waiter.close()
        self._drop(link)

    def _drain(self, link: _Link) -> None:
        # The socket is readable: a read takes what it holds (up to _READ_SIZE; the loop comes
        # back at once for more), and under TLS (rediss://) whatever its layer decrypted too,
        # which no poll() would show. Reading a socket that has data never blocks, so under
        # gevent the reader would keep the CPU for a whole burst while every stream waits to
        # write: let them run after every batch.
        handled = 0
        while True:
            data = link.sock.recv(_READ_SIZE)
            if not data:
                raise redis.exceptions.ConnectionError("Redis closed the connection")
            for reply in link.replies.feed(data):
                self._handle(reply, link)
                handled += 1
                if handled % _BATCH == 0:
                    time.sleep(0)  # a yield to the other greenlets (a GIL release under threads)
            if not link.decrypted():
                return

    def _send_requests(self, link: _Link, commands: list[tuple[str, str]]) -> None:
        # One SUBSCRIBE (or UNSUBSCRIBE) for every channel queued since the last batch: a
        # burst of new streams costs a few commands, not one round of parsing per stream.
        # On a cluster one SSUBSCRIBE may name channels of one slot only: one each.
        for command, channels in _batches(commands):
            for group in [[c] for c in channels] if self.cluster else [channels]:
                getattr(link.pubsub, command)(*group)

    def _handle(self, reply: Reply, link: _Link) -> None:
        kind = reply[0]
        if kind in ("message", "smessage"):
            subscribers = self._channels.get(reply[1])  # type: ignore[arg-type]
            if subscribers:
                frame = decode_envelope(reply[2])  # type: ignore[arg-type]
                if frame is not None:
                    for subscriber in subscribers:
                        subscriber.deliver(frame)
        elif kind in ("subscribe", "ssubscribe"):
            self._confirm(reply[1])  # type: ignore[arg-type]
        elif kind == "sunsubscribe":
            self._left(reply[1], link)  # type: ignore[arg-type]

    def _confirm(self, channel: str) -> None:
        with self._lock:
            pending = self._pending.get(channel)
            if pending is None:
                return
            pending.outstanding -= 1
            if pending.outstanding <= 0:
                del self._pending[channel]
                pending.confirmed.set()

    def _left(self, channel: str, link: _Link) -> None:
        """A shard channel unsubscribed: as asked, or (asked by nobody) because its slot moved
        to another node, whose streams then end and resume elsewhere."""
        with self._lock:
            if self._leaving.get(channel, 0) > 0:
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
                return
            if self._where.get(channel) != link.node:
                return
            gone = self._forget([channel])
        log.warning("shard channel %s moved; ending its local streams", channel)
        _end(gone)
        self._reread_slots()

    def _drop(self, link: _Link) -> None:
        with self._lock:
            if self._links.get(link.node) is not link:
                return
            del self._links[link.node]
            gone = self._forget([c for c, n in self._where.items() if n == link.node])
        _end(gone)
        link.close()
        self._reread_slots()

    def _forget(self, channels: list[str]) -> _Gone:
        """Drop `channels` (the lock held); what `_end` then ends."""
        gone = _Gone()
        for channel in channels:
            gone.subscribers += self._channels.pop(channel, ())
            self._where.pop(channel, None)
            self._leaving.pop(channel, None)
            pending = self._pending.pop(channel, None)
            if pending is not None:
                gone.pending.append(pending)
        return gone


@dataclass
class _Gone:
    """The subscribers and waiting subscriptions of channels whose connection is gone."""

    subscribers: list[Subscriber] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)


def _end(gone: _Gone) -> None:
    """End the streams first, then release those still waiting for a confirmation: they see
    their end as they wake."""
    for subscriber in gone.subscribers:
        subscriber.end("redis-unavailable")
    for waiting in gone.pending:
        waiting.confirmed.set()


class _Waiter:
    """Waits for any of a few sockets to become readable, for the hub's reader.

    First a non-blocking poll() (the standard library's: no FD_SETSIZE limit, which select()
    has and a process holding a thousand client sockets exceeds), so a reader with data waiting
    goes on at once; only when nothing is ready does it block, in a selector (gevent's under
    gevent). gevent's selector alone always yields a whole turn of the event loop first: with
    ten thousand streams that turn is long, and every burst waited behind it.
    """

    def __init__(self, sockets: list[Any]) -> None:
        self._poll = _poll()
        self._selector = selectors.DefaultSelector()
        for sock in sockets:
            self._poll.register(sock.fileno(), select.POLLIN)
            self._selector.register(sock, selectors.EVENT_READ)

    def wait(self, timeout: float) -> set[int]:
        """The descriptors readable now, else after blocking up to `timeout` seconds."""
        ready = {fd for fd, _ in self._poll.poll(0)}
        if ready:
            return ready
        return {key.fd for key, _ in self._selector.select(timeout)}

    def close(self) -> None:
        self._selector.close()


def _poll() -> Any:
    try:  # the standard library's poll: a check that never waits needs no event loop
        from gevent.monkey import get_original

        return get_original("select", "poll")()
    except ImportError:
        return select.poll()


def _batches(commands: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Consecutive commands of one kind grouped, in order (a subscribe, then an unsubscribe,
    of one channel must reach Redis in that order)."""
    batches: list[tuple[str, list[str]]] = []
    for command, channel in commands:
        if batches and batches[-1][0] == command:
            batches[-1][1].append(channel)
        else:
            batches.append((command, [channel]))
    return batches


def decode_envelope(raw: str) -> Frame | None:
    """A flask-sse envelope (`{"data", "id", "type"}`) as a frame; None if it is malformed.

    flask-sse's own stream dies on the first malformed message for every subscriber of the
    channel; here a bad message is logged and skipped.
    """
    try:
        data, data_json, id_text, kind = _envelope_parts(raw)
    except (TypeError, ValueError):
        log.error("dropping a malformed envelope: %.200r", raw)
        return None
    event_id = parse_event_id(id_text) if id_text else None
    if event_id is None or not isinstance(data, dict):
        log.error("dropping an envelope without an event id or object data: %.200r", raw)
        return None
    frame = event_frame(kind or "message", id_text, data_json)
    published = parse_timestamp(data.get("timestamp"))
    return Frame(event_id, frame, is_terminal(data.get("stage")), published)


#: An envelope as our scripts publish it (`notifier/lua/publish.lua`, `append_account.lua`):
#: the data's JSON, then the id and the type, on one line.
_AS_PUBLISHED = re.compile(
    r'\{"data":(\{[^\r\n]*\}),"id":"(\d{1,20}-\d{1,20})","type":"([A-Za-z0-9_.-]{1,64})"\}'
)


def _envelope_parts(raw: str) -> tuple[Any, str, str | None, str | None]:
    """The envelope's data (decoded, and as the JSON its frame carries), id and type.

    Laid out as our scripts publish it, the data's JSON goes into the frame as published
    (one line of ASCII, as `encode_json` writes it) instead of being encoded again, which
    was a third of the reader's cost per message; any other layout goes through flask-sse's
    `Message`. Raises ValueError or TypeError for what is not an envelope."""
    published = _AS_PUBLISHED.fullmatch(raw)
    if published is not None and published[1].isascii():
        with contextlib.suppress(ValueError):  # else not ours after all: the general path
            return json.loads(published[1]), published[1], published[2], published[3]
    message = Message(**json.loads(raw))
    data = message.data
    data_json = encode_json(data) if isinstance(data, dict) else ""
    return data, data_json, str(message.id) if message.id else None, message.type


def hub_client_name() -> str:
    return f"{keys.namespace()}:sse-hub"


_hub: Hub | None = None
_hub_lock = threading.Lock()


def process_hub() -> Hub:
    """The process's hub, created on first use (after gunicorn forked this worker), for the
    Redis of the process's settings."""
    global _hub
    with _hub_lock:
        if _hub is None:
            where = settings.current().redis
            _hub = Hub(where.url, cluster=where.cluster)
        return _hub
