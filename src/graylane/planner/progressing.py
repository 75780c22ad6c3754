"""The Progressing phase (reference §2.3, §2.4): one handler per reason of the Progressing condition.

InRolling first checks the special cases in Kruise's order (fast rollback, paused, continuous
release, plan changed) and otherwise runs the step machine. Pure: no I/O, `now` from the snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from graylane.api import keys
from graylane.api.enums import (
    ConditionStatus,
    ConditionType,
    FinaliseReason,
    FinalisingStep,
    ProgressingReason,
    RolloutPhase,
    StepState,
)
from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import CanaryStatus
from graylane.planner import analysis, bluegreen, canary, conditions, rollback, traffic, trafficrouting_link
from graylane.planner.actions import DeleteBatchRelease, RecordEvent
from graylane.planner.context import Pass, next_step_index
from graylane.planner.finalising import finalise
from graylane.planner.weights import scale

__all__ = ["progressing", "transition"]

R = ProgressingReason
GRACE_SECONDS = 3.0
MSG_PROGRESSING = "Rollout is in Progressing"
MSG_PAUSED = "Rollout has been paused, you can resume it by kube-cli"
MSG_CANCELLING = "The workload has been rolled back and the rollout process will be cancelled"
MSG_FINALISING = "Rollout has been completed and some closing work is being done"
MSG_COMPLETED = "Rollout progressing has been completed"
MSG_CANCELLED = "Rollout progressing has been cancelled"
MSG_CONTINUOUS = "Workload is continuous release"


def transition(p: Pass, status: str, reason: str, message: str = "") -> None:
    """Kruise's progressingStateTransition: set the condition, and mirror its message into status."""
    current = conditions.get_condition(p.status.conditions, ConditionType.PROGRESSING)
    text = message or (current.message if current is not None else "")
    p.status.conditions = conditions.set_condition(
        p.status.conditions, ConditionType.PROGRESSING, status, reason, text, p.observed.now
    )
    p.status.message = text


def progressing(p: Pass) -> None:
    if p.observed.workload is None or not p.workload.status_consistent:
        return
    cond = conditions.get_condition(p.status.conditions, ConditionType.PROGRESSING)
    handler = REASONS.get(cond.reason if cond is not None else "")
    if handler is not None:
        handler(p)


def _initializing(p: Pass) -> None:
    p.status.canary_status = _fresh_sub_status(p)
    p.status.blue_green_status = None
    p.status.conditions = analysis.forget(p.status.conditions)
    # The stable Service and the provider objects must exist before anything moves (reference §2.3).
    if not traffic.verify(p):
        return
    cond = conditions.get_condition(p.status.conditions, ConditionType.PROGRESSING)
    since = cond.last_update_time if cond is not None and cond.last_update_time else p.observed.now
    # Wait a moment after the workload changed: a Rollout edit sent together with it may land late.
    remaining = (since + dt.timedelta(seconds=GRACE_SECONDS) - p.observed.now).total_seconds()
    if remaining > 0:
        p.wait(remaining)
        return
    if not trafficrouting_link.link_ready(p):  # the end-to-end TrafficRouting knows we release
        return
    transition(p, ConditionStatus.TRUE, R.IN_ROLLING, MSG_PROGRESSING)
    # Kruise starts the first step on the next reconcile; starting it in this pass shows the same
    # states in the same order, with one status write instead of two.
    _in_rolling(p)


def _fresh_sub_status(p: Pass) -> CanaryStatus:
    return CanaryStatus(
        observed_workload_generation=p.workload.generation,
        rollout_hash=rollout_hash(p.rollout.spec.strategy),
        observed_rollout_id=p.workload.rollout_id,
        stable_revision=p.workload.stable_revision,
        current_step_index=1,
        next_step_index=next_step_index(p.rollout, 1),
        current_step_state=StepState.BEFORE_STEP_UPGRADE,
        last_update_time=p.observed.now,
        canary_revision=p.workload.canary_revision,
    )


def _in_rolling(p: Pass) -> None:
    if p.status.canary_status is None:
        transition(p, ConditionStatus.TRUE, R.INITIALIZING, MSG_PROGRESSING)
        return
    revision_changed = p.workload.canary_revision != p.sub.canary_revision
    in_batches = rollback.in_batches(p.rollout, p.workload)
    if p.workload.is_in_rollback and revision_changed and not in_batches:
        _fast_rollback(p)
    elif p.rollout.spec.strategy.paused:
        transition(p, ConditionStatus.TRUE, R.PAUSED, MSG_PAUSED)
    elif p.workload.is_in_rollback and revision_changed:
        rollback.restart_in_batches(p)
    elif p.sub.canary_revision and revision_changed and bluegreen.is_blue_green(p.rollout):
        bluegreen.refuse_continuous_release(p)
    elif p.sub.canary_revision and revision_changed:
        _continuous_release(p)
    elif p.sub.rollout_hash and p.sub.rollout_hash != rollout_hash(p.rollout.spec.strategy):
        _plan_changed(p)
    elif p.sub.current_step_state == StepState.COMPLETED:
        _to_finalising(p)
    else:
        canary.run_canary(p)
        if p.sub.current_step_state == StepState.COMPLETED:
            _to_finalising(p)  # the last step finished in this pass


def _to_finalising(p: Pass) -> None:
    """Kruise moves to Finalising, and starts it, one reconcile at a time; the same states in the same
    order in one pass save two status writes per release."""
    transition(p, ConditionStatus.TRUE, R.FINALISING, MSG_FINALISING)
    _finalising(p)


def _fast_rollback(p: Pass) -> None:
    p.sub.canary_revision = p.workload.canary_revision
    p.act(RecordEvent("Normal", "Progressing", "workload has been rollback, then rollout is canceled"))
    transition(p, ConditionStatus.TRUE, R.CANCELLING, MSG_CANCELLING)
    p.status.message = analysis.cancel_message(p, p.status.message)


def _continuous_release(p: Pass) -> None:
    """A newer revision mid-release: tear down this release's objects and start again from step 1."""
    p.act(
        RecordEvent(
            "Normal", "Progressing", "workload continuous publishing canaryRevision, then restart publishing"
        )
    )
    # Kruise's order: routes back to stable, BatchRelease gone, canary Service gone (the stable
    # Service keeps its selector: the stable revision does not change).
    if not traffic.task_done(p, FinalisingStep.ROUTE_TRAFFIC_TO_STABLE):
        return
    if p.observed.batch_release is not None:
        if not p.observed.batch_release.metadata.get("deletionTimestamp"):
            p.act(DeleteBatchRelease())
        return  # its deletion event wakes this Rollout
    if not traffic.task_done(p, FinalisingStep.REMOVE_CANARY_SERVICE):
        return
    p.status.canary_status = None
    transition(p, ConditionStatus.TRUE, R.INITIALIZING, MSG_CONTINUOUS)


def _plan_changed(p: Pass) -> None:
    """Steps edited mid-release: land on the first step that keeps at least the pods already upgraded."""
    target = _recalculated_step(p)
    p.sub.rollout_hash = rollout_hash(p.rollout.spec.strategy)
    p.touch()
    if p.sub.next_step_index == target:
        p.sub.current_step_state = StepState.STEP_READY
        return
    p.sub.next_step_index = target
    canary.run_canary(p)


def _recalculated_step(p: Pass) -> int:
    br = p.observed.batch_release
    if br is None or br.spec.release_plan.batch_partition is None:
        return 1
    plan = br.spec.release_plan
    partition = min(plan.batch_partition or 0, len(plan.batches) - 1)
    current = scale(plan.batches[partition].canary_replicas, p.workload.replicas)
    order = list(range(len(p.steps)))
    here = p.sub.current_step_index - 1
    if 0 <= here < len(order):
        order = [here, *(i for i in order if i != here)]
    target = 1
    for i in order:
        target = i + 1
        if current <= scale(p.steps[i].replicas, p.workload.replicas):
            break
    return target


def _finalising(p: Pass) -> None:
    if finalise(p, FinaliseReason.SUCCESS):
        transition(p, ConditionStatus.FALSE, R.COMPLETED, MSG_COMPLETED)
        _set_succeeded(p, ConditionStatus.TRUE)
        _healthy_once_released(p)


def _cancelling(p: Pass) -> None:
    if finalise(p, FinaliseReason.ROLLBACK):
        transition(p, ConditionStatus.FALSE, R.COMPLETED, MSG_CANCELLED)
        _set_succeeded(p, ConditionStatus.FALSE)
        _healthy_once_released(p)
    # An analysis rollback keeps its evidence in status.message until the next release.
    p.status.message = analysis.cancel_message(p, p.status.message)


def _healthy_once_released(p: Pass) -> None:
    """Completed: Healthy in the same pass (Kruise: the next reconcile), one status write less - but only
    once the workload no longer carries the in-progressing annotation, or a stale cache would read the
    Healthy Rollout's workload as a new release."""
    if keys.IN_PROGRESSING_ANNOTATION not in p.workload.annotations:
        _completed(p)


def _paused(p: Pass) -> None:
    if not p.rollout.spec.strategy.paused:
        transition(p, ConditionStatus.TRUE, R.IN_ROLLING)


def _completed(p: Pass) -> None:
    p.status.phase = RolloutPhase.HEALTHY


def _set_succeeded(p: Pass, status: str) -> None:
    p.status.conditions = conditions.set_condition(
        p.status.conditions, ConditionType.SUCCEEDED, status, "", "", p.observed.now
    )


REASONS: dict[str, Callable[[Pass], None]] = {
    R.INITIALIZING: _initializing,
    R.IN_ROLLING: _in_rolling,
    R.FINALISING: _finalising,
    R.PAUSED: _paused,
    R.CANCELLING: _cancelling,
    R.COMPLETED: _completed,
}
