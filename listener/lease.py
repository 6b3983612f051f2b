"""Who is the active listener: a Redis lease, renewed while the holder runs.

A standby tries to take it every third of its lifetime; a holder that dies (SIGKILL) loses it
within `LISTENER_LEASE_SECONDS`, and a standby then resumes from the stored position.
"""

from __future__ import annotations

import os
import socket
import uuid

from notifier import keys
from notifier.connection import get_redis, run_script
from notifier.scripts import LuaScript

_RENEW = LuaScript.load(__file__, "renew_lease")


def lease_key() -> str:
    # One hash tag for the lease and the position: a script touches both (one cluster slot).
    return f"{keys.namespace()}:{{listener}}:lease"


class Lease:
    def __init__(self, seconds: float) -> None:
        self.ms = int(seconds * 1000)
        #: Who holds it, as `fulfillment listen --status` shows (host, pid, a unique part).
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def take(self) -> bool:
        """Take the lease if nobody holds it (or this process still does)."""
        client = get_redis()
        if client.set(lease_key(), self.token, nx=True, px=self.ms):
            return True
        return bool(client.get(lease_key()) == self.token) and self.renew()

    def renew(self) -> bool:
        return bool(run_script(_RENEW, [lease_key()], [self.token, self.ms]))

    def release(self) -> None:
        client = get_redis()
        if client.get(lease_key()) == self.token:
            client.delete(lease_key())


def holder() -> str | None:
    value = get_redis().get(lease_key())
    return str(value) if value else None
