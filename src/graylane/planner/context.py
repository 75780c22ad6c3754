"""The per-pass scratchpad of the progressing planner: the status being built, actions, requeue.

One `Pass` lives for one `plan()` call; it is how the small state handlers share their results
without a large mutable context object. It must not do I/O.
"""

from __future__ import annotations

import dataclasses

from graylane.api.rollout_v1beta1 import CanaryStatus, CanaryStep, Rollout, RolloutStatus
from graylane.planner.actions import RolloutAction
from graylane.planner.observed import RolloutObserved, Workload

__all__ = ["Pass", "next_step_index"]


def next_step_index(rollout: Rollout, current: int) -> int:
    """Kruise's NextBatchIndex: the following step, or -1 on/after the last one."""
    return current + 1 if current < len(rollout.spec.strategy.steps()) else -1


@dataclasses.dataclass
class Pass:
    observed: RolloutObserved
    status: RolloutStatus  # a private copy; handlers edit it
    actions: list[RolloutAction] = dataclasses.field(default_factory=list)
    requeue: float | None = None

    @property
    def rollout(self) -> Rollout:
        return self.observed.rollout

    @property
    def workload(self) -> Workload:
        assert self.observed.workload is not None, "progressing needs a workload"
        return self.observed.workload

    @property
    def sub(self) -> CanaryStatus:
        assert self.status.canary_status is not None, "no canary sub-status"
        return self.status.canary_status

    @property
    def steps(self) -> list[CanaryStep]:
        return self.rollout.spec.strategy.steps()

    @property
    def current_step(self) -> CanaryStep:
        index = min(max(self.sub.current_step_index, 1), len(self.steps))
        return self.steps[index - 1]

    def act(self, *actions: RolloutAction) -> None:
        self.actions.extend(actions)

    def wait(self, seconds: float) -> None:
        """Ask to be reconciled again after `seconds` (the earliest request wins)."""
        seconds = max(seconds, 0.0)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def touch(self) -> None:
        self.sub.last_update_time = self.observed.now
