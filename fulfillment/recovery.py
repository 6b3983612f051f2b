"""Crash recovery, in one place: who is working on an order, which delivery is current, how
often steps died, and where a run starts.

- The *alive mark*: set while one of the order's steps runs (renewed by a thread), while a
  retry is scheduled, and while its next message waits in the queue. The reconciler only
  takes over orders without one; a dead worker's mark fades within `ALIVE_SECONDS`.
- The *epoch*: bumped by a takeover, atomically with the check that nobody is alive
  (`claim_takeover`). Messages of an older epoch are stale, so an old delivery that turns up
  later does nothing: there is never a second live pipeline.
- The *running epoch* and *strikes*: a step marks its epoch running when it starts and clears
  it when it ends without dying; a takeover that finds the mark still set counts a strike (the
  step died mid-run). Too many strikes in a row, with no step completing between, fail the
  order instead of looping (a step that keeps killing its worker).
- The *provisioning lease* (`exclusive`): a per-order critical section around creating the
  WHMCS order. A lease is not a fence (a paused holder can outlive it), which is why the
  step also asks WHMCS before creating.
- The *resume point*: where a run starts, for a trigger (a failed order's new run starts at
  the step that failed) and for a takeover (at the step the order's stage says is next).

Epoch, running epoch and strikes live in the order's ledger hash, beside the facts the
ledger keeps (one key per order, in the order's cluster slot).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from integrations import TransientError
from notifier import Stage, keys
from notifier.connection import get_redis, run_script
from notifier.scripts import LuaScript

from .ledger import FAILED_STEP, ledger_key
from .plan import Step

log = logging.getLogger(__name__)

# -- the resume point ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResumePoint:
    step: Step
    #: The run is an operator retry starting past activation: Salesforce says Failed and must
    #: be marked Activating again first.
    reopen: bool = False


#: Where an order taken over resumes, by the stage it shows.
_NEXT_AFTER = {
    Stage.ACTIVATING: Step.PROVISION,  # activation was announced: provisioning is next
    Stage.PROVISIONING: Step.PROVISION,  # re-run: it finds what WHMCS already has
}


def resume_point(state: Mapping[str, Any] | None, failed_step: str | None) -> ResumePoint:
    """Where a run starts, from the order's state and the step that failed last (ledger).

    For a trigger `state` is the state before the claim; for a takeover, the state shown."""
    stage = state.get("stage") if state else None
    run = int(state.get("run", 1)) if state else 1
    if stage == Stage.FAILED:  # a trigger opening the next run
        return _after_failure(failed_step, run + 1)
    if stage == Stage.QUEUED and run > 1:  # that run's claim was made, its chain lost
        return _after_failure(failed_step, run)
    if stage == Stage.RETRYING:
        step = Step.leading_to(state.get("step") if state else None) or Step.ACTIVATE
    else:
        step = _NEXT_AFTER.get(Stage(stage), Step.ACTIVATE) if stage else Step.ACTIVATE
    return ResumePoint(step, reopen=run > 1 and step is Step.PROVISION)


def _after_failure(failed_step: str | None, run: int) -> ResumePoint:
    """A failed order's next run starts at the step that failed (activation if unknown)."""
    step = Step.leading_to(failed_step) or Step.ACTIVATE
    return ResumePoint(step, reopen=run > 1 and step is Step.PROVISION)


# -- alive marks and takeovers --------------------------------------------------------------

_RENEW = LuaScript.load(__file__, "renew_lease")
_RELEASE = LuaScript.load(__file__, "release_lease")
_TAKE_OVER = LuaScript.load(__file__, "take_over")
_END_STEP = LuaScript.load(__file__, "end_step")


def alive_key(order_id: str) -> str:
    return keys.order_key(order_id, "alive")


def mark_alive(order_id: str, seconds: float, why: str = "waiting") -> None:
    """Keep the order marked alive for `seconds` (a scheduled retry, a queued message)."""
    queue_mark_alive(get_redis(), order_id, seconds, why)


def queue_mark_alive(pipe: Any, order_id: str, seconds: float, why: str = "waiting") -> None:
    """`mark_alive` on a pipeline (or a client: then at once)."""
    pipe.set(alive_key(order_id), why, ex=max(1, int(seconds)))


@contextmanager
def keep_alive(order_id: str, ttl_seconds: float = 15) -> Iterator[None]:
    """Mark the order alive for the block (its step is running); the mark then fades."""
    client = get_redis()
    seconds = max(1, int(ttl_seconds))
    client.set(alive_key(order_id), "running", ex=seconds)
    with _Renewer(lambda: client.set(alive_key(order_id), "running", ex=seconds), ttl_seconds / 3):
        yield


def claim_takeover(order_id: str, grace_seconds: float) -> int | None:
    """The new epoch if nobody is working on the order (and mark it alive); else None."""
    epoch = run_script(
        _TAKE_OVER, [alive_key(order_id), ledger_key(order_id)], [max(1, int(grace_seconds))]
    )
    return int(epoch) if epoch else None


# -- epochs and strikes -----------------------------------------------------------------------


def epoch(order_id: str) -> int:
    return int(get_redis().hget(ledger_key(order_id), "epoch") or 0)


def queue_start_facts(pipe: Any, order_id: str) -> None:
    """Queue the read of what a start needs from the ledger; `start_facts` reads the reply."""
    pipe.hmget(ledger_key(order_id), [FAILED_STEP, "epoch"])


def start_facts(reply: list[Any]) -> tuple[str | None, int]:
    """The step that failed last (where a new run resumes) and the current epoch."""
    failed_step, current_epoch = reply
    return (str(failed_step) if failed_step else None), int(current_epoch or 0)


def mark_started(order_id: str, epoch: int) -> None:
    """A step of `epoch` began executing; until `mark_ended`, a takeover of `epoch` means the
    step died mid-run (a strike)."""
    get_redis().hset(ledger_key(order_id), "runningEpoch", epoch)


def mark_ended(order_id: str, epoch: int, progressed: bool) -> None:
    """The step of `epoch` ended without dying (done, retry scheduled or failed). When it
    `progressed`, the order's strikes start over: a strike limit is for a step that keeps
    killing its worker, not for an order that is merely unlucky under many crashes."""
    run_script(_END_STEP, keys=[ledger_key(order_id)], args=[epoch, int(progressed)])


def running_epoch(order_id: str) -> int | None:
    """The epoch whose step is executing or died executing; None between steps."""
    value = get_redis().hget(ledger_key(order_id), "runningEpoch")
    return int(value) if value is not None else None


def count_strike(order_id: str) -> int:
    """Count one more step that died mid-run; returns the total."""
    return int(get_redis().hincrby(ledger_key(order_id), "strikes", 1))


# -- the provisioning lease ---------------------------------------------------------------


@contextmanager
def exclusive(order_id: str, purpose: str, lease_seconds: float) -> Iterator[None]:
    """Hold the order's `purpose` lease for the block; wait for a holder, then give up with a
    TransientError (the step retries later).

    Give it the alive marks' lifetime (`ALIVE_SECONDS`): a dead holder's lease must lapse by
    the time its order is taken over, or the takeover only waits for a corpse."""
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
            lambda: run_script(_RENEW, [key], [token, lease_ms], client), lease_seconds / 3
        ):
            yield
    finally:
        # Compare-and-delete: never release a lease that expired and was taken by another.
        run_script(_RELEASE, [key], [token], client)


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
