"""Metric updates on a hot path, added up in the process and written once a second.

In multiprocess mode every `inc` or `observe` takes a lock, checks the process id and writes
the value into a memory-mapped file; a histogram's `observe` writes twice (its sum and a
bucket). A burst of events to ten thousand streams made three such writes per stream write,
a twentieth of the web process's time. A `Tally` keeps the counts in memory and a background
thread (a greenlet under gevent) writes them once per `FLUSH_SECONDS`, so a scrape sees them at
most that late; what a process counted in its last second before it died is lost.
"""

from __future__ import annotations

import atexit
import bisect
import os
import threading
import time

from prometheus_client import Counter, Histogram

#: How often the counts reach the metric files.
FLUSH_SECONDS = 1.0


class Tally:
    """A counter's increments and a histogram's observations, written in batches."""

    def __init__(self, counter: Counter, histogram: Histogram) -> None:
        self._counter, self._histogram = counter, histogram
        self._lock = threading.Lock()
        self._count = 0
        self._observed: list[float] = []
        self._flusher_pid: int | None = None

    def add(self, count: int, observed: float | None = None) -> None:
        """Count `count` more, and observe `observed` (when there is a value)."""
        with self._lock:
            self._count += count
            if observed is not None:
                self._observed.append(observed)
            if self._flusher_pid != os.getpid():  # started in each process (gunicorn forks)
                self._flusher_pid = os.getpid()
                threading.Thread(target=self._flush_every_second, daemon=True).start()
                atexit.register(self.flush)

    def flush(self) -> None:
        """Write what was added since the last flush."""
        with self._lock:
            count, observed = self._count, self._observed
            self._count, self._observed = 0, []
        if count:
            self._counter.inc(count)
        if observed:
            _observe_all(self._histogram, observed)

    def _flush_every_second(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


def _observe_all(histogram: Histogram, values: list[float]) -> None:
    """`histogram.observe` for each value, with one write per bucket and one for the sum.
    The batch writes through the histogram's own value objects (prometheus-client has no
    public call for it); if a version lacks them, each value is observed as usual."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets, total = getattr(histogram, "_buckets", None), getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1  # the first bound >= value, as observe
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
    total.inc(sum(values))
