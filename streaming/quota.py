"""At most N open streams per key (a customer account), across every web process.

Each key is a Redis sorted set of the streams open under it, scored by when their lease ends
(Redis's clock, so hosts with skewed clocks agree). A process renews the leases of its own
streams every third of a lease (a thirtieth of its keys each second, in chunked pipelines),
so a stream of a process that died stops counting within `lease_seconds`. A closed stream
stops counting here at once and is removed from Redis by the same background thread, many at
a time (what was released within a tenth of a second, in one script call per chunk of keys):
when ten thousand streams end through a burst's terminal events they must not cost a round
trip each, nor stall the process in one long pipeline. The process also counts its own
streams, so a key already at its limit here is refused without asking Redis.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from redis.client import Pipeline

from notifier import keys, placement
from notifier.connection import queue_script, run_pipeline
from notifier.scripts import LuaScript

log = logging.getLogger(__name__)

_ACQUIRE = LuaScript.load(__file__, "acquire_slot")
_RENEW = LuaScript.load(__file__, "renew_slots")
_RELEASE = LuaScript.load(__file__, "release_slots")

Release = Callable[[], None]
T = TypeVar("T")


class StreamQuota:
    """Counts open streams per key; `acquire` refuses the newest beyond `limit`."""

    def __init__(self, limit: int, lease_seconds: float = 90.0) -> None:
        self.limit = limit
        self.lease_ms = int(lease_seconds * 1000)
        self._process = uuid.uuid4().hex[:12]
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}
        self._removals: list[tuple[str, str]] = []
        self._wake = threading.Event()
        self._background: threading.Thread | None = None

    def acquire(self, key: str) -> Release | None:
        """A release function for one more stream under `key`, or None at the limit."""
        return self.with_slot(key, lambda pipe: None)[1]

    def with_slot(
        self, key: str, build: Callable[[Pipeline], None]
    ) -> tuple[list[Any], Release | None]:
        """Run what `build` queues and, in the same round trip, ask for a slot under `key`:
        the replies to `build`'s commands, and the slot's release function (None: no slot)."""
        attempts: list[Attempt] = []

        def queue(pipe: Pipeline) -> None:
            for earlier in attempts:  # run_pipeline runs us again after NOSCRIPT
                earlier.settle(None)
            build(pipe)
            attempts[:] = [self.queue_acquire(pipe, key)]

        try:
            replies = run_pipeline(queue)
        except BaseException:
            for attempt in attempts:
                attempt.settle(None)  # forget the slot counted here
            raise
        attempt = attempts[0]
        if not attempt.queued:
            return replies, attempt.settle(None)
        return replies[:-1], attempt.settle(replies[-1])

    def queue_acquire(self, pipe: Pipeline, key: str) -> Attempt:
        """Queue the request for a slot on `pipe` (nothing is queued when this process alone
        already holds the limit); `Attempt.settle` with its reply tells the outcome."""
        with self._lock:
            if len(self._held.get(key, ())) >= self.limit:
                return Attempt(self, key, None)
            member = f"{self._process}:{next(self._numbers)}"
            self._held.setdefault(key, set()).add(member)  # counted here before Redis answers
        queue_script(pipe, _ACQUIRE, [_set_key(key)], [member, self.limit, self.lease_ms])
        return Attempt(self, key, member)

    def _release(self, key: str, member: str) -> None:
        if self._forget(key, member):
            with self._lock:
                self._removals.append((key, member))
            self._wake.set()

    def _forget(self, key: str, member: str) -> bool:
        with self._lock:
            members = self._held.get(key)
            if members is None or member not in members:
                return False
            members.discard(member)
            if not members:
                del self._held[key]
            return True

    def _start_renewer(self) -> None:
        with self._lock:
            if self._background is None:
                self._background = threading.Thread(
                    target=self._keep, name="stream-quota", daemon=True
                )
                self._background.start()

    def _keep(self) -> None:
        """Remove released streams as they come; renew held ones a slice at a time, so every
        lease is renewed once per third of a lease without one long pause for all of them
        (a pause the streams' deliveries would wait behind)."""
        tick = self.lease_ms / 3000 / _RENEWAL_SLICES
        slice_number, renew_at = 0, time.monotonic() + tick
        while True:
            if self._wake.wait(max(0.0, renew_at - time.monotonic())):
                # Streams end one by one through a burst: let their releases gather, so
                # Redis gets one call for many of them, not a round trip for each.
                time.sleep(_GATHER_SECONDS)
            self._wake.clear()
            try:
                self.remove_released()
                if time.monotonic() >= renew_at:
                    renew_at += tick
                    self.renew(slice_number % _RENEWAL_SLICES, _RENEWAL_SLICES)
                    slice_number += 1
            except Exception as exc:  # Redis away: leases run down, streams end anyway
                log.warning("stream quota upkeep failed: %r", exc)

    def remove_released(self) -> None:
        """Remove every stream released since the last call: on one Redis, a script call per
        chunk of keys; on a cluster, whose script calls take keys of one slot only, a ZREM
        per key."""
        with self._lock:
            removals, self._removals = self._removals, []
        by_key: dict[str, list[str]] = {}
        for key, member in removals:
            by_key.setdefault(_set_key(key), []).append(member)
        items = list(by_key.items())
        if placement.clustered():
            _in_chunks(items, lambda pipe, item: pipe.zrem(item[0], *item[1]))
        else:
            for chunk in _chunks(items):
                run_pipeline(functools.partial(_queue_release, removals=chunk))
                time.sleep(0)  # a yield under gevent

    def renew(self, part: int = 0, parts: int = 1) -> None:
        """Extend the leases of this process's streams: those of every `parts`-th key."""
        with self._lock:
            held = [
                (key, sorted(members))
                for key, members in self._held.items()
                if zlib.crc32(key.encode()) % parts == part
            ]
        lease = self.lease_ms

        def queue(pipe: Pipeline, item: tuple[str, list[str]]) -> None:
            queue_script(pipe, _RENEW, [_set_key(item[0])], [lease, *item[1]])

        _in_chunks(held, queue)


#: How long released streams wait to leave Redis together (their process stops counting
#: them at once; the other processes, this much later).
_GATHER_SECONDS = 0.1
#: Renewals are spread over this many ticks per renewal interval.
_RENEWAL_SLICES = 30
#: Commands per pipeline in the background work: the process's other greenlets get a turn
#: between chunks.
_CHUNK = 500


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _in_chunks(items: list[T], queue: Callable[[Pipeline, T], object]) -> None:
    for chunk in _chunks(items):

        def build(pipe: Pipeline, chunk: list[T] = chunk) -> None:
            for item in chunk:
                queue(pipe, item)

        run_pipeline(build)
        time.sleep(0)  # a yield under gevent


def _queue_release(pipe: Pipeline, removals: list[tuple[str, list[str]]]) -> None:
    """One release_slots.lua call for `removals` (each a key's set and its members)."""
    args: list[str | int] = []
    for _, members in removals:
        args += [len(members), *members]
    queue_script(pipe, _RELEASE, [key for key, _ in removals], args)


class Attempt:
    """A queued request for a stream slot, settled by its reply."""

    def __init__(self, quota: StreamQuota, key: str, member: str | None) -> None:
        self.quota, self.key, self.member = quota, key, member

    @property
    def queued(self) -> bool:
        return self.member is not None

    def settle(self, reply: object) -> Release | None:
        """The slot's release function, or None when there was none left (or the request
        failed: a Redis error comes back as the reply of a non-raising pipeline)."""
        if self.member is None:
            return None
        member = self.member
        if reply != 1:
            self.quota._forget(self.key, member)
            return None
        self.quota._start_renewer()
        return functools.partial(self.quota._release, self.key, member)  # lighter than a closure


def _set_key(key: str) -> str:
    return f"{keys.namespace()}:streams:{{{key}}}"
