"""Benchmarks (`make bench`): the fanout, leak and pipeline scenarios, ours side by side with
stock flask-sse; results in bench/results/, the table in BENCHMARKS.md."""
