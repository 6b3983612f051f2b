"""Fault switches: what each emulator should do wrong, for which action, how many times.

Each emulator owns one `FaultRegistry`. A fault names an action (or `*`), a mode (what goes
wrong) and/or a latency, and optionally how many matching requests it applies to. For each
request the emulator calls `take(action)`: every matching latency-only fault adds its delay,
and the oldest matching fault with a mode decides the outcome; each fault used is consumed
once. A long-lived call (a Pub/Sub API stream) may ask at several points, each time only
about the modes and latency that make sense there, and can subscribe to additions to notice a
fault switched on while it waits. Faults live in memory only; a restart clears them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ControlError

COMMON_MODES = (
    "error", "http500", "http503", "timeout", "limit", "expire_session", "html", "truncated",
    "garbled",
)  # fmt: skip
DEFAULT_HOLD_MS = 30_000
_FIELDS = {"action", "mode", "times", "latencyMs", "errorCode", "message", "holdMs"}


@dataclass
class Fault:
    id: str
    action: str
    mode: str | None
    times: int | None
    remaining: int | None
    latency_ms: float
    error_code: str | None
    message: str | None
    hold_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "mode": self.mode,
            "times": self.times,
            "remaining": self.remaining,
            "latencyMs": self.latency_ms,
            "errorCode": self.error_code,
            "message": self.message,
            "holdMs": self.hold_ms,
        }


@dataclass(frozen=True)
class Plan:
    """What to do to one request: sleep `latency` seconds, then misbehave as `fault` says."""

    latency: float = 0.0
    fault: Fault | None = None

    @property
    def mode(self) -> str | None:
        return self.fault.mode if self.fault else None

    @property
    def hold(self) -> float:
        return self.fault.hold_ms / 1000 if self.fault else 0.0


class FaultRegistry:
    """The faults of one emulator, safe to use from every request thread.

    `actions` are the names a fault may target besides `*`; `wildcard_skips` are actions `*`
    leaves alone; `mode_actions` limits a mode to some actions (and `forbidden` bars pairs).
    """

    def __init__(
        self,
        actions: Iterable[str],
        modes: Iterable[str] = COMMON_MODES,
        wildcard_skips: Iterable[str] = (),
        mode_actions: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._actions = {name.lower(): name for name in actions}
        self._modes = tuple(modes)
        self._wildcard_skips = {name.lower() for name in wildcard_skips}
        self._mode_actions = {
            m: {a.lower() for a in acts} for m, acts in (mode_actions or {}).items()
        }
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._on_add: list[Callable[[], None]] = []

    def on_add(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every fault added (outside the registry's lock)."""
        self._on_add.append(callback)

    def add(self, body: Any) -> Fault:
        """Validate a control-API body and store the fault it describes."""
        fault = self._parse(body)
        with self._lock:
            self._faults.append(fault)
        for callback in self._on_add:
            callback()
        return fault

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(
        self,
        action: str,
        modes: Collection[str] | None = None,
        latency: bool = True,
        wildcard: bool = True,
    ) -> Plan:
        """Consume the faults that apply to one request for `action`. `modes` limits the
        modes that may apply now (None: any); `latency=False` leaves latency-only faults for
        a later call; `wildcard=False` leaves `*` faults out (a part of a request that has
        had them already: a composite call's subrequests)."""
        latency_ms = 0.0
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not self._applies(fault, action, wildcard) or (fault.mode and chosen):
                    continue
                if fault.mode and modes is not None and fault.mode not in modes:
                    continue
                if not fault.mode and not latency:
                    continue
                chosen = chosen or (fault if fault.mode else None)
                latency_ms += fault.latency_ms
                if fault.remaining is not None:
                    fault.remaining -= 1
        return Plan(latency_ms / 1000, chosen)

    def _applies(self, fault: Fault, action: str, wildcard: bool = True) -> bool:
        if fault.remaining == 0:
            return False
        if fault.action == "*":
            return wildcard and action.lower() not in self._wildcard_skips
        return fault.action.lower() == action.lower()

    # --- validation ------------------------------------------------------------------------

    def _parse(self, body: Any) -> Fault:
        if not isinstance(body, dict):
            raise _invalid("the body must be a JSON object")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise _invalid(f"unknown field(s): {', '.join(unknown)}")
        action = self._action(body.get("action"))
        mode = _optional(body, "mode", str)
        if mode is not None and mode not in self._modes:
            raise _invalid(f"mode must be one of {', '.join(self._modes)}")
        self._check_pair(action, mode)
        times = _optional(body, "times", int)
        if times is not None and times < 1:
            raise _invalid("times must be at least 1")
        latency = _number(body, "latencyMs", 0.0)
        if mode is None and latency <= 0:
            raise _invalid("give a mode, a positive latencyMs, or both")
        return Fault(
            id=f"f{next(self._ids)}",
            action=action,
            mode=mode,
            times=times,
            remaining=times,
            latency_ms=latency,
            error_code=_optional(body, "errorCode", str),
            message=_optional(body, "message", str),
            hold_ms=_number(body, "holdMs", DEFAULT_HOLD_MS),
        )

    def _action(self, value: Any) -> str:
        if value == "*":
            return value
        if not isinstance(value, str) or value.lower() not in self._actions:
            known = ", ".join(sorted(self._actions.values()))
            raise _invalid(f"action must be '*' or one of {known}")
        return self._actions[value.lower()]

    def _check_pair(self, action: str, mode: str | None) -> None:
        allowed = self._mode_actions.get(mode or "")
        if allowed is not None and action.lower() not in allowed:
            raise _invalid(f"mode {mode} does not apply to action {action}")


def _invalid(message: str) -> ControlError:
    return ControlError("INVALID_FAULT", message)


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    # bool is an int subclass; `"times": true` is a mistake, not 1.
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise _invalid(f"{name} must be a {kind.__name__}")
    return value


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _invalid(f"{name} must be a non-negative number")
    return float(value)
