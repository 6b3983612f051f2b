"""Benchmarks (`make bench`): fan-out, leak and pipeline scenarios, side by side with stock
flask-sse. The scenarios arrive with the stream (issue #3) and benchmark (issue #7) work."""
