"""The retry policy: how often and how patiently a step is retried after a transient error.

One policy object, one attempt counter (`Job.attempt`): a step's try `attempt` either gets
another after `delay(attempt)` seconds, or, at `max_attempts`, fails the order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from settings import RetrySettings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float

    @classmethod
    def from_settings(cls, retry: RetrySettings) -> RetryPolicy:
        return cls(retry.max_attempts, retry.backoff_seconds, retry.backoff_max_seconds)

    def allows_another(self, attempt: int) -> bool:
        """Whether try `attempt` (from 1) may be followed by another."""
        return attempt < self.max_attempts

    def delay(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter" after try `attempt`: never zero, never
        above the cap."""
        ceiling = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)
