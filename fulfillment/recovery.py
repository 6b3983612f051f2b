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
  WHMCS order, which reads the ledger as it is entered and writes it as it is left. A lease
  is not a fence (a paused holder can outlive it), which is why a repeated provisioning also
  asks WHMCS before creating.
- The *resume point*: where a run starts, for a trigger (a failed order's new run starts at
  the step that failed) and for a takeover (at the step the order's stage says is next).

Epoch, running epoch and strikes live in the order's ledger hash, beside the facts the
ledger keeps (one key per order, in the order's cluster slot).
"""

from __future__ import annotations

import logging
import os
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

from .ledger import TTL_SECONDS as LEDGER_TTL_SECONDS
from .ledger import ledger_key
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
_ENTER = LuaScript.load(__file__, "enter_lease")
_LEAVE = LuaScript.load(__file__, "leave_lease")
_TAKE_OVER = LuaScript.load(__file__, "take_over")
_END_STEP = LuaScript.load(__file__, "end_step")


def alive_key(order_id: str) -> str:
    return keys.order_key(order_id, "alive")


def mark_alive(order_id: str, seconds: float, why: str = "waiting") -> None:
    """Keep the order marked alive for `seconds` (a scheduled retry, a queued message)."""
    get_redis().set(alive_key(order_id), why, ex=max(1, int(seconds)))


@contextmanager
def keep_alive(order_id: str, ttl_seconds: float = 15, *, marked: bool = False) -> Iterator[None]:
    """Keep the order marked alive for the block (its step is running); the mark then fades.
    `marked`: the caller set the mark already (a step's bookkeeping did, as it began)."""
    client = get_redis()
    seconds = max(1, int(ttl_seconds))
    if not marked:
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


@dataclass
class Section:
    """A critical section held: the ledger field as it was when entered, and what to write
    there on the way out (`write`)."""

    value: str | None
    written: str | None = None

    def write(self, value: str) -> None:
        """Write `value` to the field when the section is left (in the same call as the
        release, even when the block raises)."""
        self.written = value


@contextmanager
def exclusive(
    order_id: str, purpose: str, lease_seconds: float, ledger_field: str
) -> Iterator[Section]:
    """Hold the order's `purpose` lease for the block, reading the ledger's `ledger_field`
    as it is taken and writing what the block `write`s as it is released (one call each);
    wait for a holder, then give up with a TransientError (the step retries later).

    Give it the alive marks' lifetime (`ALIVE_SECONDS`): a dead holder's lease must lapse by
    the time its order is taken over, or the takeover only waits for a corpse."""
    key = keys.order_key(order_id, f"lock:{purpose}")
    token = uuid.uuid4().hex
    client = get_redis()
    lease_ms = int(lease_seconds * 1000)
    deadline = time.monotonic() + lease_seconds + 5
    section_keys = [key, ledger_key(order_id)]
    while True:
        taken, *value = run_script(_ENTER, section_keys, [token, lease_ms, ledger_field], client)
        if taken:
            break
        if time.monotonic() > deadline:
            raise TransientError(
                "STEP_IN_PROGRESS", f"another worker is running {purpose}", system="fulfillment"
            )
        time.sleep(0.2)
    section = Section(value[0] if value and value[0] else None)
    try:
        with _Renewer(
            lambda: run_script(_RENEW, [key], [token, lease_ms], client), lease_seconds / 3
        ):
            yield section
    finally:
        # Compare-and-delete: never release a lease that expired and was taken by another.
        field, written = (ledger_field, section.written) if section.written else ("", "")
        args = [token, field, written, LEDGER_TTL_SECONDS]
        run_script(_LEAVE, section_keys, args, client, replicated=bool(written))


class _Renewer:
    """Calls `renew` every `interval` seconds while the block runs, on the process's one
    renewal thread (`_RENEWALS`): a step holds a mark and maybe a lease, and a thread started
    and joined for each cost more than the step's own Redis calls. Once the block has left,
    `renew` is not called again (a renewal in progress is waited for)."""

    def __init__(self, renew: Callable[[], object], interval: float) -> None:
        self._renew, self._interval = renew, max(0.05, interval)
        self.lock = threading.Lock()
        self.cancelled = False
        self.due = 0.0

    def __enter__(self) -> _Renewer:
        self.due = time.monotonic() + self._interval
        _RENEWALS.add(self)
        return self

    def __exit__(self, *_: object) -> None:
        with self.lock:
            self.cancelled = True
        _RENEWALS.discard(self)

    def renew(self) -> None:
        with self.lock:
            if self.cancelled:
                return
            try:
                self._renew()
            except Exception as exc:  # a missed renewal only shortens the lease
                log.warning("lease renewal failed: %r", exc)
        self.due = time.monotonic() + self._interval


class _Renewals:
    """The renewers held in this process, renewed by one daemon thread as each falls due
    (started on first use, so a forked pool process starts its own)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: set[_Renewer] = set()
        self._pid: int | None = None

    def add(self, renewer: _Renewer) -> None:
        with self._changed:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="renewals", daemon=True).start()
            self._held.add(renewer)
            self._changed.notify()

    def discard(self, renewer: _Renewer) -> None:
        with self._changed:
            self._held.discard(renewer)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [r for r in self._held if r.due <= now]
                if not due:
                    soonest = min((r.due for r in self._held), default=now + 60)
                    self._changed.wait(max(0.01, soonest - now))
                    continue
            for renewer in due:
                renewer.renew()


_RENEWALS = _Renewals()
