"""What a blue-green release does differently from a canary one, on the Rollout's side (reference §3.7).

Blue-green and canary share the step machine (planner/canary.py), the Progressing reasons
(planner/progressing.py) and the finalisation tasks (planner/finalising.py); they differ in four
places, all here:

- the sub-status: Kruise stores `blueGreenStatus` (`updatedRevision`, `updatedReplicas`,
  `updatedReadyReplicas`) instead of `canaryStatus`. The planner works on a canary-shaped copy and the
  result is stored back in the blue-green shape (`working_view` / `stored_plan`): the two differ in
  three field names only, so one step machine serves both instead of a copy of it;
- the BatchRelease's release plan (rollingStyle `BlueGreen`, no pod-template metadata);
- a newer revision mid-release is refused, not restarted: the old and new pods both serve, so a third
  version has nowhere to go (Kruise's message, no retry; the user rolls back);
- the finalisation order, chosen by reason so that no request reaches a version it should not: on
  success every request goes to the new pods before the old ones go; on rollback every request goes
  back to the old pods before the new ones go; on disable/delete the stable Service selects both
  versions first, because the workload is then handed to its own rolling update.

What it must not do: I/O, or read a clock.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from graylane.api.batchrelease import ReleaseBatch, ReleasePlan
from graylane.api.enums import FinaliseReason, FinalisingStep, RollingStyle
from graylane.api.rollout_v1beta1 import BlueGreenStatus, CanaryStatus, Rollout, RolloutStatus
from graylane.planner.actions import RecordEvent, RolloutPlan
from graylane.planner.context import Pass
from graylane.planner.observed import RolloutObserved

__all__ = [
    "MSG_CONTINUOUS_REFUSED",
    "finalise_sequence",
    "is_blue_green",
    "refuse_continuous_release",
    "release_plan",
    "stored_plan",
    "working_view",
]

MSG_CONTINUOUS_REFUSED: Final = (
    "new version releasing detected in the progress of blue-green release, please rollback first"
)
F = FinalisingStep
# Kruise's nextBlueGreenTask; PatchBatchRelease is graylane's ResumeWorkload, RemoveBatchRelease its
# ReleaseWorkloadControl (the names the canary sequences already store).
_SUCCESS: Final = (
    F.ROUTE_TRAFFIC_TO_NEW,
    F.RESTORE_STABLE_SERVICE,
    F.RESUME_WORKLOAD,
    F.ROUTE_TRAFFIC_TO_STABLE,
    F.REMOVE_CANARY_SERVICE,
    F.RELEASE_WORKLOAD_CONTROL,
)
_ROLLBACK: Final = (
    F.ROUTE_TRAFFIC_TO_STABLE,
    F.RESUME_WORKLOAD,
    F.RESTORE_STABLE_SERVICE,
    F.REMOVE_CANARY_SERVICE,
    F.RELEASE_WORKLOAD_CONTROL,
)
_HAND_BACK: Final = (
    F.RESTORE_STABLE_SERVICE,
    F.RESUME_WORKLOAD,
    F.ROUTE_TRAFFIC_TO_STABLE,
    F.REMOVE_CANARY_SERVICE,
    F.RELEASE_WORKLOAD_CONTROL,
)
# (blue-green name, canary name) of the sub-status fields that differ; the rest are CommonStatus.
_RENAMED: Final = (
    ("updated_revision", "canary_revision"),
    ("updated_replicas", "canary_replicas"),
    ("updated_ready_replicas", "canary_ready_replicas"),
)


def is_blue_green(rollout: Rollout) -> bool:
    return rollout.spec.strategy.rolling_style() is RollingStyle.BLUE_GREEN


# -- the sub-status ---------------------------------------------------------------------------------


def working_view(observed: RolloutObserved) -> RolloutObserved:
    """The snapshot with `blueGreenStatus` read as a canary-shaped `canaryStatus` for the step machine."""
    status = observed.rollout.status
    if status.blue_green_status is None:
        return observed
    working = status.model_copy(
        update={"canary_status": _as_canary(status.blue_green_status), "blue_green_status": None}
    )
    rollout = observed.rollout.model_copy(update={"status": working})
    return dataclasses.replace(observed, rollout=rollout)


def stored_plan(plan: RolloutPlan) -> RolloutPlan:
    """The plan with its status back in the shape Kruise stores for a blue-green Rollout."""
    if plan.status is None or plan.status.canary_status is None:
        return plan
    return dataclasses.replace(plan, status=_stored(plan.status))


def _stored(status: RolloutStatus) -> RolloutStatus:
    assert status.canary_status is not None
    return status.model_copy(
        update={"blue_green_status": _as_blue_green(status.canary_status), "canary_status": None}
    )


def _as_canary(sub: BlueGreenStatus) -> CanaryStatus:
    values = sub.model_dump(by_alias=False)
    for ours, theirs in _RENAMED:
        values[theirs] = values.pop(ours)
    return CanaryStatus.model_validate(values)


def _as_blue_green(sub: CanaryStatus) -> BlueGreenStatus:
    values = sub.model_dump(by_alias=False)
    for ours, theirs in _RENAMED:
        values[ours] = values.pop(theirs)
    return BlueGreenStatus.model_validate(values)


# -- the release ------------------------------------------------------------------------------------


def release_plan(p: Pass, *, batch: int) -> ReleasePlan:
    """The BatchRelease's plan: one batch per step, the new pods added beside the old ones."""
    blue_green = p.rollout.spec.strategy.blue_green
    assert blue_green is not None, "a blue-green release plan needs a blue-green strategy"
    return ReleasePlan(
        batches=[ReleaseBatch(canary_replicas=step.replicas or 0) for step in p.steps],
        batch_partition=batch,
        rollout_id=p.sub.observed_rollout_id,
        failure_threshold=blue_green.failure_threshold,
        rolling_style=RollingStyle.BLUE_GREEN,
    )


def refuse_continuous_release(p: Pass) -> None:
    """A third version mid-release: say so and wait (Kruise: a fatal error, no retry) until the user
    rolls the workload back; the webhook keeps the Deployment paused meanwhile."""
    if p.status.message != MSG_CONTINUOUS_REFUSED:
        # Kruise records this Event before it refuses; once per refusal here, not on every pass.
        p.act(
            RecordEvent(
                "Normal",
                "Progressing",
                "workload continuous publishing canaryRevision, then restart publishing",
            )
        )
    p.status.message = MSG_CONTINUOUS_REFUSED


def finalise_sequence(reason: FinaliseReason) -> tuple[FinalisingStep, ...]:
    if reason is FinaliseReason.SUCCESS:
        return _SUCCESS
    if reason is FinaliseReason.ROLLBACK:
        return _ROLLBACK
    return _HAND_BACK
