"""Crash points: places where a test can have the worker killed, to prove nothing breaks.

Inert unless the process was started with `FULFILLMENT_CRASHPOINTS` naming the point, and even
then only when a test has armed it in Redis (one shot). `FULFILLMENT_CRASH_SCOPE=worker` kills
the whole worker (its process group: main process and pool children), the default kills only
the process running the step. Production never sets either variable.
"""

from __future__ import annotations

import os
import signal

import settings
from notifier import keys
from notifier.connection import get_redis

POINTS = (
    "after-activate-write",  # Salesforce says Activating, the event is not published yet
    "before-addorder",  # about to create the WHMCS order
    "after-addorder",  # WHMCS created it, our ledger does not know yet
    "before-accept",  # recorded, not accepted
    "after-accept",  # accepted, Salesforce not told
    "after-complete-write",  # Salesforce says Completed, the event is not published yet
)


def arm_key(point: str) -> str:
    return f"{keys.namespace()}:crashpoint:{point}"


def crashpoint(point: str) -> None:
    recovery = settings.current().recovery
    if point not in recovery.crashpoints:
        return
    if not get_redis().getdel(arm_key(point)):
        return
    if recovery.crash_scope == "worker":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
