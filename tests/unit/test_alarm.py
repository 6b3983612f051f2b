"""The streams' shared clock: each sleeper is rung once its deadline has come, a sooner
deadline wakes the clock early, and a sleeper that is gone is neither rung nor kept."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import weakref

from streaming.alarm import Alarm
from tests.helpers import wait_until


class Recorder:
    def __init__(self) -> None:
        self.rung: list[float] = []
        self.rang = threading.Event()

    def ring(self, deadline: float) -> None:
        self.rung.append(deadline)
        self.rang.set()


def test_each_sleeper_is_rung_once_its_deadline_has_come() -> None:
    clock, now = Alarm(), time.monotonic()
    first, second = Recorder(), Recorder()
    clock.wake_at(second, now + 0.3)
    clock.wake_at(first, now + 0.1)
    assert second.rang.wait(10) and first.rang.is_set()
    assert first.rung == [now + 0.1] and second.rung == [now + 0.3]
    assert time.monotonic() >= now + 0.3


def test_a_sooner_deadline_wakes_a_clock_that_waits_for_a_later_one() -> None:
    clock, now = Alarm(), time.monotonic()
    later, sooner = Recorder(), Recorder()
    clock.wake_at(later, now + 600)
    wait_until(lambda: clock._next == now + 600, 5)  # the clock now waits ten minutes
    clock.wake_at(sooner, now + 0.05)
    assert sooner.rang.wait(10), "the clock slept through a sooner deadline"
    assert later.rung == []


def test_a_sleeper_that_is_gone_is_not_kept_until_its_deadline() -> None:
    clock = Alarm()
    gone = Recorder()
    reference = weakref.ref(gone)
    clock.wake_at(gone, time.monotonic() + 600)
    del gone
    gc.collect()
    assert reference() is None


STREAM_UNDER_GEVENT = """
from gevent import monkey
monkey.patch_all()
import time
from streaming import alarm
from streaming.hub import Frame, Subscriber

assert alarm.in_use()
subscriber = Subscriber("801", "ch", limit=10)
started = time.monotonic()
assert subscriber.take(0.6) == []  # nothing came: the clock woke it
waited = time.monotonic() - started
assert alarm.process_alarm()._thread is not None, "the wait did not go on the clock"
assert waited >= 0.6, waited
subscriber.deliver(Frame((1, 0), b"x", False))
assert [f.data for f in subscriber.take(30)] == [b"x"]
print("ok")
"""


def test_a_stream_waits_on_the_clock_under_gevent() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", STREAM_UNDER_GEVENT], capture_output=True, text=True, timeout=60
    )
    assert ran.stdout.strip() == "ok", ran.stderr
