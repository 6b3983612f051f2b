"""The benchmark's latency over time: a stall reads apart from a machine that is slow
throughout."""

from __future__ import annotations

from bench.percentiles import over_time


def test_one_stall_shows_as_one_slow_window():
    samples = [(at / 100, 0.005) for at in range(200)]  # two seconds at 5 ms
    samples += [(1.1 + n / 1000, 0.240) for n in range(50)]  # a 240 ms stall at 1.1 s
    trace = over_time(samples, window=0.25, slow_ms=50)
    assert trace["windows"] == 8
    assert trace["slow_windows"] == 1
    assert trace["worst"][0] == {"at_s": 1.0, "events": 75, "p99_ms": 240.0}
    assert all(row["p99_ms"] == 5.0 for row in trace["worst"][1:])


def test_no_samples():
    assert over_time([]) == {"window_s": 0.25, "windows": 0, "slow_windows": 0, "worst": []}
