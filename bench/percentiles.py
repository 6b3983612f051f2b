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
