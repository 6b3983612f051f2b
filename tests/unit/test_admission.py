"""Admission rules as pure functions: when a process sheds, and when browsers come back."""

from __future__ import annotations

import pytest

from streaming.admission import Admission, AdmissionLimits, Overloaded
from streaming.hub import _batches


def admission(max_streams: int = 3, reconnect_rate: float = 100) -> Admission:
    return Admission(
        AdmissionLimits(
            max_streams=max_streams,
            open_concurrency=2,
            retry_ms=3000,
            shed_retry_seconds=60,
            reconnect_rate=reconnect_rate,
        )
    )


def test_streams_beyond_the_limit_are_shed_counting_those_still_opening():
    gate = admission(max_streams=3)
    gate.opened()
    gate.opened()
    with gate.opening_stream(), pytest.raises(Overloaded), gate.opening_stream():
        pass
    with gate.opening_stream():  # the opening one left: room again
        gate.opened()
    with pytest.raises(Overloaded), gate.opening_stream():
        pass
    gate.closed()
    with gate.opening_stream():
        pass


def test_shed_browsers_are_told_to_come_back_across_a_wide_window():
    delays = [admission().shed_retry_ms() for _ in range(500)]
    assert min(delays) >= 3000 and max(delays) <= 60_000
    assert max(delays) - min(delays) > 30_000  # spread, not one instant


def test_streams_the_server_ends_come_back_at_the_reconnect_rate():
    gate = admission(max_streams=100_000, reconnect_rate=100)
    for _ in range(1000):
        gate.opened()
    delays = [gate.reconnect_retry_ms() for _ in range(500)]
    # 1,000 streams at 100/s: spread over 10 s after the usual retry.
    assert min(delays) >= 3000 and max(delays) <= 13_000
    assert max(delays) - min(delays) > 5_000
    quiet = admission()
    assert quiet.reconnect_retry_ms() == 3000  # nothing open: nothing to spread


def test_hub_commands_are_batched_in_order():
    commands = [
        ("subscribe", "a"),
        ("subscribe", "b"),
        ("unsubscribe", "a"),
        ("subscribe", "a"),
        ("subscribe", "c"),
    ]
    assert _batches(commands) == [
        ("subscribe", ["a", "b"]),
        ("unsubscribe", ["a"]),
        ("subscribe", ["a", "c"]),
    ]
