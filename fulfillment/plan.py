"""The chain's steps as a type: each knows the stage it leads to and which step comes next.

ACTIVATE ─► PROVISION ─► COMPLETE
activating  provisioning  completed     (the stage each step announces when it is done)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from notifier import Stage


class Step(StrEnum):
    ACTIVATE = "activate"
    PROVISION = "provision"
    COMPLETE = "complete"

    @property
    def leads_to(self) -> Stage:
        """The stage this step announces (and that a failure or retry of it names)."""
        return _LEADS_TO[self]

    @property
    def task_name(self) -> str:
        return f"fulfillment.{self.value}"

    @classmethod
    def leading_to(cls, stage: str | None) -> Step | None:
        """The step whose stage is `stage` (`activating` -> ACTIVATE), if any."""
        return _BY_STAGE.get(str(stage)) if stage else None

    @property
    def following(self) -> Step | None:
        """The step after this one (None after the last)."""
        steps = list(Step)
        index = steps.index(self) + 1
        return steps[index] if index < len(steps) else None


_LEADS_TO = {
    Step.ACTIVATE: Stage.ACTIVATING,
    Step.PROVISION: Stage.PROVISIONING,
    Step.COMPLETE: Stage.COMPLETED,
}
_BY_STAGE = {str(stage): step for step, stage in _LEADS_TO.items()}


@dataclass(frozen=True)
class Job:
    """One execution of a step: which order, run and epoch it serves, which try it is.

    `run` is the order's fulfillment run (1, then +1 for every operator retry) and `epoch`
    counts the reconciler's takeovers: a message of an older run or epoch is stale.
    """

    order_id: str
    run: int
    epoch: int = 0
    #: This try of the step, from 1 (one counter for every kind of retry).
    attempt: int = 1
    #: First step of an operator retry that skips activation: re-mark Activating first.
    reopen: bool = False

    def as_message(self) -> dict[str, Any]:
        """The job as a task's one argument (JSON)."""
        return asdict(self)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Job:
        return cls(**{k: message[k] for k in ("order_id", "run", "epoch", "attempt", "reopen")})

    def next_attempt(self) -> Job:
        return Job(self.order_id, self.run, self.epoch, self.attempt + 1, self.reopen)

    def for_next_step(self) -> Job:
        """The job of the step after this one: a first try, not reopening."""
        return Job(self.order_id, self.run, self.epoch)
