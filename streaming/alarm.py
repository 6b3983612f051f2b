"""One clock for the streams' long waits, instead of a timer per wait.

A stream waits for its next frame, its next heartbeat (15 to 60 s away) or its credential's
expiry, whichever comes first. With a timeout on each wait, every event a stream receives
starts and cancels a timer (under gevent a `Timeout` object and a libev timer each time): at
a burst of 25,000 events to 10,000 streams, about 4 % of the web's CPU. Instead, a stream
notes when it must wake and waits without a timeout, and `Alarm` keeps one heap entry per
waiting stream: a stream woken early by a frame keeps its entry, which, when it comes due, is
moved on to the stream's latest deadline (`Sleeper.ring`). One greenlet wakes what is due.

Only under gevent, where nothing runs between a stream's reading and writing of its own
deadline and the clock's: real threads could interleave there and lose a wake-up, so they
keep a timeout per wait (`in_use()`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import weakref
from typing import Protocol

log = logging.getLogger(__name__)

#: Waits shorter than this keep their own timer (the clock is for heartbeat-long waits).
LONG_WAIT = 0.5


class Sleeper(Protocol):
    def ring(self, deadline: float) -> None:
        """The clock's entry for `deadline` came due: wake, or ask again for later."""


class Alarm:
    """Calls `sleeper.ring(deadline)` once `deadline` (a monotonic time) has come."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, weakref.ref[Sleeper]]] = []
        self._order = itertools.count()  # ties never compare the references
        self._lock = threading.Lock()
        self._changed = threading.Event()
        #: When the clock will look next (its thread's wait), infinity when nothing waits.
        self._next = float("inf")
        self._thread: threading.Thread | None = None

    def wake_at(self, sleeper: Sleeper, deadline: float) -> None:
        # A weak reference: a stream that ends is not kept until its heartbeat would be due.
        with self._lock:
            heapq.heappush(self._heap, (deadline, next(self._order), weakref.ref(sleeper)))
            sooner = deadline < self._next
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stream-alarm", daemon=True)
                self._thread.start()
        if sooner:
            self._changed.set()

    def _run(self) -> None:
        while True:
            try:
                self._ring(self._due())
            except Exception:  # a dead clock would leave every waiting stream asleep
                log.exception("stream alarm failed; going on")
            wait = self._next - time.monotonic()
            self._changed.wait(None if wait == float("inf") else max(0.0, wait))

    def _due(self) -> list[tuple[float, int, weakref.ref[Sleeper]]]:
        now, due = time.monotonic(), []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap))
            # Under the lock that `wake_at` reads them with: a sooner entry pushed after this
            # sets the event again.
            self._next = self._heap[0][0] if self._heap else float("inf")
            self._changed.clear()
        return due

    @staticmethod
    def _ring(due: list[tuple[float, int, weakref.ref[Sleeper]]]) -> None:
        for deadline, _, reference in due:
            sleeper = reference()
            if sleeper is not None:
                sleeper.ring(deadline)


_alarm = Alarm()


def process_alarm() -> Alarm:
    return _alarm


def in_use() -> bool:
    """Whether waits go on the clock: only when threading is gevent's (see above)."""
    try:
        from gevent.monkey import is_module_patched
    except ImportError:
        return False
    return bool(is_module_patched("threading"))
