"""What a failure looks like: the `error` object of a `failed` event, built in one place.

Internal details (stack traces, hosts) stay in the logs; the customer and the operator see a
code, a message and whether another run could help.
"""

from __future__ import annotations

from typing import Any

from integrations import IntegrationError

#: Fulfillment kept stalling: its steps died mid-run too often in a row.
RECOVERY_EXHAUSTED = ("RECOVERY_EXHAUSTED", "fulfillment kept stalling")
#: The order could not be queued (the broker was down).
BROKER_UNAVAILABLE = ("BROKER_UNAVAILABLE", "could not queue")
#: The worker running the step died, again and again.
WORKER_LOST = ("WORKER_LOST", "the worker running this step died")
INTERNAL_ERROR = ("INTERNAL_ERROR", "unexpected error in fulfillment")


def failure(code_and_message: tuple[str, str], retryable: bool = True) -> dict[str, Any]:
    code, message = code_and_message
    return {"code": code, "message": message, "retryable": retryable}


def describe_error(exc: BaseException) -> dict[str, Any]:
    """The `error` object for an exception that ended a step."""
    if isinstance(exc, IntegrationError):
        return {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
    if type(exc).__name__ == "WorkerLostError":  # billiard's: the step kept killing its process
        return failure(WORKER_LOST)
    return failure(INTERNAL_ERROR)
