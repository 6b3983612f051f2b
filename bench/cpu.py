"""Where a phase's CPU went: seconds per process, and the machine's cores shared out.

Every benchmark runs its load generator, publishers, Redis and the server under test on the
same two cores, so a latency figure means little without knowing how busy the machine was:
`CoresDuring` says how many cores each named process used over a phase, what the machine's
other processes (the publishers, say) used, and how much stayed idle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import psutil


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of a process and (unless told otherwise) its children (gunicorn's
    and Celery's workers); 0 when it is gone."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in (root, *(root.children(recursive=True) if children else ())):
            times = process.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


class CoresDuring:
    """Cores used by each named group of processes (their own CPU, children left out) between
    `start()` and `stop()`; `rest` is every other process on the machine, `idle` what nobody
    used."""

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self.groups = dict(groups)
        self._before: dict[str, float] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._started = 0.0
        #: The phase's length, once stopped.
        self.seconds = 0.0

    def start(self) -> CoresDuring:
        self._before = self._spent()
        self._machine = _machine_busy_idle()
        self._started = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        wall = self.seconds = max(time.monotonic() - self._started, 1e-6)
        spent = {name: seconds - self._before[name] for name, seconds in self._spent().items()}
        (busy_then, idle_then), (busy, idle) = self._machine, _machine_busy_idle()
        busy, idle = busy - busy_then, idle - idle_then
        cores = {name: seconds / wall for name, seconds in spent.items()}
        cores["rest"] = max(0.0, busy / wall - sum(cores.values()))
        cores["idle"] = idle / wall
        return {name: round(value, 2) for name, value in cores.items()}

    def _spent(self) -> dict[str, float]:
        return {
            name: sum(cpu_seconds(pid, children=False) for pid in pids)
            for name, pids in self.groups.items()
        }


def _machine_busy_idle() -> tuple[float, float]:
    """Seconds all cores have been busy and idle since boot (waiting on I/O counts as idle)."""
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is in user's
    return (
        sum(getattr(times, name, 0.0) for name in busy),
        times.idle + getattr(times, "iowait", 0.0),
    )
