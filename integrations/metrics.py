"""External call metrics: latency of every Salesforce and WHMCS call, by outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Histogram

from .errors import IntegrationError

EXTERNAL_CALL_SECONDS = Histogram(
    "fulfillment_external_call_seconds",
    "Duration of calls to external systems.",
    ["system", "operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@contextmanager
def timed_call(system: str, operation: str) -> Iterator[None]:
    """Time one call; the outcome label is `ok`, or the error's code."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except IntegrationError as exc:
        outcome = exc.code
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        EXTERNAL_CALL_SECONDS.labels(system, operation, outcome).observe(
            time.perf_counter() - started
        )
