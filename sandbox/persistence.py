"""Keeping the world in `<dir>/state.json` across restarts.

A background thread writes the file at most about once a second, and only when something
changed; `stop()` writes a last time. A save serializes the whole world with its lock held,
so as the world grows the saves space out to keep their share of the emulator's time (and of
every request's wait) under a fiftieth: a benchmark's world of thousands of orders must not
make the emulator the bottleneck it measures through. Writes go to a temporary file that is
renamed over the old one, so a crash mid-write never leaves a half-written state behind.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from .files import write_atomic
from .state import World

STATE_FILE = "state.json"
#: A save's share of the emulator's time at most: the wait after a save grows with its cost.
SAVE_SHARE = 0.02
log = logging.getLogger(__name__)


def load(path: Path) -> World:
    """The world saved at `path`, or an empty one when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text())
        return World.from_json(data)
    except FileNotFoundError:
        return World()
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        # Keep the unreadable file for inspection instead of silently overwriting it.
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        os.replace(path, aside)
        log.warning("sandbox state %s unreadable (%s); moved to %s", path, exc, aside)
        return World()


def save(world: World, path: Path) -> int:
    """Write the world to `path` atomically; return the version that was written."""
    with world.lock:
        version = world.version
        text = json.dumps(world.to_json(), separators=(",", ":"))
    write_atomic(path, text.encode())
    return version


class Autosaver:
    """A daemon thread that saves the world when its version moved on."""

    def __init__(self, world: World, path: Path, interval: float = 1.0) -> None:
        self.world = world
        self.path = path
        self.interval = interval
        self._saved_version = world.version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-autosave", daemon=True)

    def start(self) -> Autosaver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and save one last time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._save_if_changed()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self._save_if_changed()
            except OSError:
                log.exception("could not save sandbox state to %s", self.path)
            spent = time.monotonic() - started
            wait = max(self.interval, spent * (1 - SAVE_SHARE) / SAVE_SHARE)

    def _save_if_changed(self) -> None:
        if self.world.version != self._saved_version or not self.path.exists():
            self._saved_version = save(self.world, self.path)
