"""A browser-like follower of one order's stream: reconnects after any ending and resumes by
event id, trying the next of its web processes when one does not answer (as a load balancer
would send it elsewhere)."""

from __future__ import annotations

import contextlib
import threading
import time

from notifier import is_terminal
from tests.sse import SSEConnection


class Follower(threading.Thread):
    """Follows one order until a terminal event; `seen` is the history it put together."""

    def __init__(
        self, hosts: list[tuple[str, int]], order_id: str, headers: dict[str, str]
    ) -> None:
        super().__init__(daemon=True)
        self.hosts, self.order_id, self.headers = hosts, order_id, headers
        self.seen: list[dict] = []
        self.last_id: str | None = None
        self.snapshots_on_resume = 0
        #: Which host served each connection that carried an event.
        self.served_by: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.done.is_set():
            host, port = self.hosts[turn % len(self.hosts)]
            try:
                self._follow_once(host, port)
            except OSError:  # refused or reset: that web process is gone, try the next
                turn += 1
            except (EOFError, ValueError):
                pass  # the stream ended: resume on the same one
            if not self.done.is_set():
                time.sleep(0.3)  # the browser's retry

    def _follow_once(self, host: str, port: int) -> None:
        headers = {**self.headers, **({"Last-Event-ID": self.last_id} if self.last_id else {})}
        path = f"/api/orders/{self.order_id}/events"
        stream = SSEConnection.open(port, path, headers, timeout=30, host=host)
        try:
            if stream.status == 204:
                self.done.set()
                return
            for event in stream.events():
                if self._take(event) and (not self.served_by or self.served_by[-1] != host):
                    self.served_by.append(host)
                if self.done.is_set():
                    return
        finally:
            with contextlib.suppress(OSError):
                stream.close()

    def _take(self, event) -> bool:
        if event.type == "order.snapshot":
            if self.last_id is not None:
                self.snapshots_on_resume += 1
            self.seen = list(event.json["history"])
        elif event.type == "order.update":
            self.seen.append(event.json)
        else:
            return False
        self.last_id = event.id
        if is_terminal(self.seen[-1]["stage"]):
            self.done.set()
        return True
