"""Leases in Redis: who is working on an order right now.

Two kinds, both kept alive by a small renewer thread while their holder runs, so a holder that
dies (SIGKILL, OOM, a lost host) loses them within seconds and nobody waits longer than that:

- `exclusive(order_id, purpose)`: a per-order critical section (creating the WHMCS order). A
  second delivery of the same step waits for it, then finds the work done. A lease is not a
  fence (a paused holder can outlive it), which is why the step also asks WHMCS before creating.
- the order's *alive* mark: set while one of its steps runs, while a retry is scheduled, and
  while its next message waits in the queue. The reconciler only takes over orders without one.
  `take_over` bumps the order's epoch atomically with that check: messages of the old epoch
  are then stale, so an old delivery that turns up later does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from integrations import TransientError
from notifier import keys
from notifier.connection import get_redis, run_script

from .config import RecoverySettings
from .ledger import ledger_key

log = logging.getLogger(__name__)

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_TAKE_OVER_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('SET', KEYS[1], 'taken-over', 'EX', ARGV[1])
return epoch
"""


def _alive_key(order_id: str) -> str:
    return keys.order_key(order_id, "alive")


class _Renewer:
    """Calls `renew` every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, renew: Callable[[], object], interval: float) -> None:
        self._renew, self._interval = renew, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease-renewer")

    def __enter__(self) -> _Renewer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._renew()
            except Exception as exc:  # a missed renewal only shortens the lease
                log.warning("lease renewal failed: %r", exc)


@contextmanager
def exclusive(order_id: str, purpose: str, lease_seconds: float | None = None) -> Iterator[None]:
    """Hold the order's `purpose` lease for the block; wait for a holder, then give up with a
    TransientError (the step retries later).

    The lease lasts as long as an alive mark (`ALIVE_SECONDS`): a dead holder's lease must
    lapse by the time its order is taken over, or the takeover only waits for a corpse."""
    lease_seconds = lease_seconds or RecoverySettings.from_env().alive_seconds
    key = keys.order_key(order_id, f"lock:{purpose}")
    token = uuid.uuid4().hex
    client = get_redis()
    lease_ms = int(lease_seconds * 1000)
    deadline = time.monotonic() + lease_seconds + 5
    while not client.set(key, token, nx=True, px=lease_ms):
        if time.monotonic() > deadline:
            raise TransientError(
                "STEP_IN_PROGRESS", f"another worker is running {purpose}", system="fulfillment"
            )
        time.sleep(0.2)
    try:
        with _Renewer(
            lambda: run_script(_RENEW_LUA, [key], [token, lease_ms], client), lease_seconds / 3
        ):
            yield
    finally:
        # Compare-and-delete: never release a lease that expired and was taken by another.
        run_script(_RELEASE_LUA, [key], [token], client)


@contextmanager
def keep_alive(order_id: str, ttl_seconds: float = 15) -> Iterator[None]:
    """Mark the order alive for the block (its step is running); the mark then fades."""
    client = get_redis()
    seconds = max(1, int(ttl_seconds))
    client.set(_alive_key(order_id), "running", ex=seconds)
    with _Renewer(lambda: client.set(_alive_key(order_id), "running", ex=seconds), ttl_seconds / 3):
        yield


def mark_alive(order_id: str, seconds: float, why: str = "waiting") -> None:
    """Keep the order marked alive for `seconds` (a scheduled retry, a queued message)."""
    get_redis().set(_alive_key(order_id), why, ex=max(1, int(seconds)))


def take_over(order_id: str, grace_seconds: float) -> int | None:
    """The new epoch if nobody is working on the order (and mark it alive); else None."""
    epoch = run_script(
        _TAKE_OVER_LUA, [_alive_key(order_id), ledger_key(order_id)], [max(1, int(grace_seconds))]
    )
    return int(epoch) if epoch else None
