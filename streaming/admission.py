"""Admission: how many streams a web process takes, how fast it opens them, and when it
tells browsers to come back later.

A burst of new streams (a deploy, a web process restarting under its browsers) is served, not
refused: streams open `open_concurrency` at a time and the rest wait their turn, so a burst
never turns into thousands of greenlets fighting over a few pooled Redis connections (which
timed them out) and streams get their snapshots roughly in arrival order. Only a process at
its connection limit sheds load, early and cheaply (before any credential is checked), with a
`retry:` spread over a wide window so the browsers it turned away do not return together.

The streams a process ends itself (on SIGTERM, or when Redis goes away) are told to reconnect
after a delay spread over `open streams / reconnect_rate` seconds: the herd comes back at a
rate the processes taking it can serve.
"""

from __future__ import annotations

import random
import resource
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class AdmissionLimits:
    #: Streams served (and opening) at most; beyond it new ones are shed.
    max_streams: int
    #: Streams opening at once.
    open_concurrency: int
    #: The `retry:` every stream starts with (milliseconds).
    retry_ms: int
    #: Shed connections come back at a random time between `retry_ms` and this.
    shed_retry_seconds: float
    #: Streams per second a process expects to take back after ending them.
    reconnect_rate: float


class Overloaded(Exception):
    """Raised when the process is at its stream limit: shed the connection."""


class Admission:
    """One web process's stream accounting: open, opening, and the gate between them."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._gate = threading.BoundedSemaphore(max(1, limits.open_concurrency))
        self.open = 0
        self.opening = 0

    @contextmanager
    def opening_stream(self) -> Iterator[None]:
        """Hold a place among the opening streams (waiting for one if needed); raise
        Overloaded at once when the process has no room for another stream."""
        with self._lock:
            if self.open + self.opening >= self.limits.max_streams:
                raise Overloaded()
            self.opening += 1
        try:
            with self._gate:
                yield
        finally:
            with self._lock:
                self.opening -= 1

    @contextmanager
    def stepping_aside(self) -> Iterator[None]:
        """Give up the opening slot held by this stream while it waits on something slow (a
        Salesforce lookup), so other streams open meanwhile; take one again afterwards."""
        self._gate.release()
        try:
            yield
        finally:
            self._gate.acquire()

    def opened(self) -> None:
        with self._lock:
            self.open += 1

    def closed(self) -> None:
        with self._lock:
            self.open -= 1

    def shed_retry_ms(self) -> int:
        """When a shed browser should come back: anywhere in a wide window."""
        low = self.limits.retry_ms
        return int(random.uniform(low, max(low, self.limits.shed_retry_seconds * 1000)))

    def reconnect_retry_ms(self) -> int:
        """When a browser whose stream we ended should come back: spread so that every
        stream of this process returns at about `reconnect_rate` per second."""
        spread_ms = 1000 * self.open / max(1.0, self.limits.reconnect_rate)
        return int(self.limits.retry_ms + random.uniform(0, spread_ms))


def default_max_streams(worker_connections: int) -> int:
    """What the process can hold (its connection limit, and its descriptor limit: each
    stream is a socket), less 5 % (at most 500) for API requests, Redis and files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = worker_connections if soft == resource.RLIM_INFINITY else min(worker_connections, soft)
    return max(1, room - min(500, max(50, room // 20)))
