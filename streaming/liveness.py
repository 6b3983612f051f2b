"""Noticing that a client went away, without waiting for a write to fail.

A WSGI app only learns of a closed client when a write fails, so a quiet stream would hold
its greenlet, socket and subscription until the next heartbeat or two. Under gevent we ask the
event loop to tell us when the client's socket becomes readable (an SSE client never sends
anything after its request, so readable means it closed or reset) and check it then. Without
gevent, streams check the socket each time they wake up.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import Any

try:  # the standard library's poll: gevent's would need a turn of its loop to report anything
    from gevent.monkey import get_original

    _poll = get_original("select", "poll")
except ImportError:
    _poll = select.poll


def watch(sock: Any, on_readable: Callable[[], None]) -> Callable[[], None] | None:
    """Call `on_readable` once when `sock` becomes readable; returns a function that stops
    watching, or None when this process has no gevent loop to watch with."""
    if sock is None:
        return None
    try:
        from gevent import get_hub
        from gevent.monkey import is_module_patched
    except ImportError:
        return None
    if not is_module_patched("socket"):
        return None
    return _Watch(get_hub().loop.io(sock.fileno(), 1), on_readable)


class _Watch:
    """One socket's watcher; calling it stops watching. An object with two slots, not two
    closures and their cells: every open stream holds one."""

    __slots__ = ("_on_readable", "_watcher")

    def __init__(self, watcher: Any, on_readable: Callable[[], None]) -> None:
        self._watcher = watcher
        self._on_readable = on_readable
        watcher.start(self._fired)  # the watcher holds us until stopped (stop drops it)

    def _fired(self) -> None:
        self._watcher.stop()  # the socket stays readable after EOF: fire once, not forever
        self._on_readable()

    def __call__(self) -> None:
        self._watcher.stop()
        self._watcher.close()


def peer_closed(sock: Any) -> bool:
    """True when the client closed or reset its connection (never blocks).

    poll(), not select(): a busy process's sockets have descriptors above FD_SETSIZE, and
    select() refuses those (which read as "the client left" and ended healthy streams)."""
    if sock is None:
        return False
    try:
        poller = _poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
        events = poller.poll(0)
        if not events:
            return False
        if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return True
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
