"""Latency summaries shared by the scenarios."""

from __future__ import annotations

import statistics


def in_milliseconds(seconds: list[float]) -> dict[str, float | None]:
    """p50, p99, max and mean of durations given in seconds, in milliseconds (None if empty)."""
    ordered = sorted(seconds)

    def at(fraction: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)

    mean = round(statistics.fmean(ordered) * 1000, 1) if ordered else None
    return {"p50": at(0.5), "p99": at(0.99), "max": at(1.0), "mean": mean}


def over_time(
    samples: list[tuple[float, float]], window: float = 0.25, slow_ms: float = 50.0
) -> dict[str, object]:
    """How latency moved over a run: `samples` are (arrival time, latency in seconds). The
    arrivals are cut into windows of `window` seconds from the first; says how many windows'
    p99 was over `slow_ms` and the three worst (a stall shows as one or two windows, a
    saturated machine as many)."""
    if not samples:
        return {"window_s": window, "windows": 0, "slow_windows": 0, "worst": []}
    start = min(at for at, _ in samples)
    buckets: dict[int, list[float]] = {}
    for at, latency in samples:
        buckets.setdefault(int((at - start) / window), []).append(latency)
    rows = [
        {"at_s": round(index * window, 2), "events": len(values),
         "p99_ms": in_milliseconds(values)["p99"]}
        for index, values in sorted(buckets.items())
    ]  # fmt: skip
    slow = [row for row in rows if (row["p99_ms"] or 0) > slow_ms]
    worst = sorted(rows, key=lambda row: row["p99_ms"] or 0, reverse=True)[:3]
    return {"window_s": window, "windows": len(rows), "slow_windows": len(slow), "worst": worst}
