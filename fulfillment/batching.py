"""Requests for keys answered a batch at a time, single-flight, by a few worker threads.

A caller asks for a key and waits. A few workers (so never more calls at once than that)
each take whatever has queued, up to `max_batch` keys, and answer them with one call of
`answer`; a key already queued or being answered is joined, not queued again. At a trickle
that is one call per key, as fast as a direct call; in a burst, thousands of keys become a
few dozen calls. `answer` raising fails every key of its batch with that error.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
#: A context to wait in (see `streaming.admission.Admission.stepping_aside`).
Waiting = Callable[[], AbstractContextManager[None]]


@dataclass
class _Flight(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


class Batched(Generic[K, V]):
    """`get`/`get_many` of keys, answered by `answer(batch) -> {key: value}`."""

    def __init__(
        self,
        answer: Callable[[list[K]], Mapping[K, V]],
        concurrency: int,
        max_batch: int,
        name: str,
        on_join: Callable[[], object] | None = None,
    ) -> None:
        self._answer, self._workers, self._max_batch = answer, max(1, concurrency), max_batch
        self._name, self._on_join = name, on_join
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._flights: dict[K, _Flight[V]] = {}
        self._queue: deque[K] = deque()
        self._started = False

    def get(self, key: K, waiting: Waiting | None = None) -> V | None:
        """`key`'s value (None when `answer` left it out), waiting inside `waiting`."""
        return self.get_many([key], waiting).get(key)

    def get_many(self, keys: Iterable[K], waiting: Waiting | None = None) -> dict[K, V | None]:
        """Each key's value, asked together; raises the error of a batch that failed."""
        flights = {key: self._join(key) for key in keys}
        with waiting() if waiting is not None else contextlib.nullcontext():
            for flight in flights.values():
                flight.done.wait()
        for flight in flights.values():
            if flight.error is not None:
                raise flight.error
        return {key: flight.value for key, flight in flights.items()}

    def _join(self, key: K) -> _Flight[V]:
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                if self._on_join is not None:
                    self._on_join()
                return flight
            flight = self._flights[key] = _Flight()
            self._queue.append(key)
            self._start_workers()
            self._ready.notify()
            return flight

    def _start_workers(self) -> None:
        # After gunicorn forked this process, on first use: threads do not survive a fork.
        if not self._started:
            self._started = True
            for number in range(self._workers):
                name = f"{self._name}-{number}"
                threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._ready.wait()
                count = min(self._max_batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
            try:
                values, error = self._answer(batch), None
            except BaseException as exc:  # every waiter of the batch learns it
                values, error = {}, exc
            with self._lock:
                flights = [self._flights.pop(key) for key in batch]
            for key, flight in zip(batch, flights, strict=True):
                flight.value, flight.error = values.get(key), error
                flight.done.set()
