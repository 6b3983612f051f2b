"""Open streams out of the garbage collector's sight.

Every open stream holds some eighty container objects for as long as it lasts (its greenlet,
the server's request, response and parser, the subscriber, the body, the watchers). Python's
full collection walks every one of them: at 10,000 streams one took 200 to 900 ms on the
benchmark machine, and every event of a burst published meanwhile waited behind it (the
fanout benchmark's p99 of 0.3 to 1.8 s). Those objects do not become garbage while their
stream is open, and reference counting frees them when it ends, so shortly after streams
open they are moved to the collector's permanent generation (`gc.freeze()`): full
collections then walk only what is young, and stay short however many streams are open.

`gc.freeze()` itself costs nothing (it splices lists), but it freezes whatever the
generations hold, garbage cycles included, and a frozen cycle is never collected. So the
young generations are collected first (`gc.collect(1)`: they are small), and freezing is
batched (once per `every` seconds while streams open), not done per stream.

The same tick hands the C heap's free pages back to the system (glibc's `malloc_trim`, at
most every `trim_every` seconds): opening a stream allocates and frees a few kilobytes around
what the stream keeps (the greenlet's saved C stack, its buffers), and the free pages left
between them stay resident otherwise (measured at 10,000 streams: 6 KB of free heap per stream,
2.6 KB of it handed back by a trim that took 30 ms).

Only a web server process turns it on (`enable()`, from gunicorn's `post_worker_init`): in a
test process the streams share the interpreter with everything else.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable


class Freezer:
    """Freezes the collector's generations soon after streams have opened (once enabled)."""

    def __init__(self, every: float = 1.0, trim_every: float = 5.0) -> None:
        self.enabled = False
        self.every = every
        self.trim_every = trim_every
        self._trimmed_at = 0.0
        self._due = threading.Event()
        self._lock = threading.Lock()
        self._background: threading.Thread | None = None

    def streams_opened(self) -> None:
        """A stream was admitted: freeze what it holds within `every` seconds."""
        if not self.enabled:
            return
        self._due.set()
        if self._background is None:
            with self._lock:
                if self._background is None:
                    self._background = threading.Thread(
                        target=self._keep, name="stream-freezer", daemon=True
                    )
                    self._background.start()

    def _keep(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.every)  # let a burst of openings gather into one freeze
            self._due.clear()
            freeze()
            if time.monotonic() - self._trimmed_at >= self.trim_every:
                trim_heap()
                self._trimmed_at = time.monotonic()


def freeze() -> None:
    """Move every object the collector tracks out of its sight, young garbage collected
    first."""
    gc.collect(1)
    gc.freeze()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    except OSError:
        return None


_trim = _malloc_trim()


def trim_heap() -> None:
    """Give the C heap's free pages back to the system, where the C library can."""
    if _trim is not None:
        _trim(0)


_freezer = Freezer()


def process_freezer() -> Freezer:
    return _freezer


def enable() -> None:
    """Freeze what open streams hold in this process from now on (a web server's worker)."""
    _freezer.enabled = True
