"""`observability.tally`: a batch written at once reads as the same updates made one by one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from observability.tally import Tally

BUCKETS = (0.001, 0.01, 0.1, 1)


def _metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    counter = Counter("writes", "writes", registry=registry)
    histogram = Histogram("waited_seconds", "waited", buckets=BUCKETS, registry=registry)
    return counter, histogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_a_flushed_tally_equals_the_updates_made_one_by_one():
    values = [0.0, 0.001, 0.0011, 0.05, 0.1, 0.7, 3.0, 0.0005]  # bounds, between, above all
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    counter, histogram = _metrics(one_by_one)
    for value in values:
        counter.inc(2)
        histogram.observe(value)
    tally = Tally(*_metrics(batched))
    for value in values:
        tally.add(2, value)
    tally.add(1)  # a write with no publication time: counted, not observed
    counter.inc(1)

    assert _samples(batched)[("writes_total", ())] == 0  # nothing written before the flush
    tally.flush()
    assert _samples(batched) == _samples(one_by_one)
    tally.flush()  # nothing new: nothing changes
    assert _samples(batched) == _samples(one_by_one)
