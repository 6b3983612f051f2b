"""Where the listener is in the event stream: the replay id after which to resume.

Stored in Redis only by the lease's holder, and only after the starts of the events it covers
are recorded (each start records its event's id atomically with the claim), so a restart
resumes with `CUSTOM` from it and loses nothing; a redelivered event is then refused by its id.
Keep-alives move it too (their `latest_replay_id`), so a quiet channel's position never falls
out of the 72-hour retention.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from notifier import keys
from notifier.connection import get_redis, run_script
from notifier.scripts import LuaScript

from .lease import Lease, lease_key

_STORE = LuaScript.load(__file__, "store_position")


def position_key() -> str:
    return f"{keys.namespace()}:{{listener}}:position"


@dataclass(frozen=True)
class Position:
    replay_id: bytes
    #: When it was stored (unix time).
    at: float
    topic: str

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.at)


def load(topic: str) -> Position | None:
    """The stored position for `topic` (None: none yet, or another topic's)."""
    fields = get_redis().hgetall(position_key())
    if not fields or fields.get("topic") != topic:
        return None
    return Position(bytes.fromhex(str(fields["replayId"])), int(fields["at"]) / 1000, topic)


def store(lease: Lease, topic: str, replay_id: bytes) -> bool:
    """Store `replay_id` as the position, if `lease` is still held; False if it is not."""
    now_ms = int(time.time() * 1000)
    args = [lease.token, replay_id.hex(), now_ms, topic]
    return bool(run_script(_STORE, [lease_key(), position_key()], args))


def forget() -> None:
    """Drop the position (Salesforce refused it): the next subscription starts afresh."""
    get_redis().delete(position_key())
