"""The Rollout's outer lifecycle: finalizer, webhook label, plan hash, and the phase calculation.

This is Kruise's reconcile skeleton (reference §2.1) as a pure function: `plan(observed)` returns the
actions and the new status; the step machine and finalisation plug in per phase. No I/O, no clock
(`observed.now` is the only time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from graylane.api import keys
from graylane.api.common import RolloutCondition
from graylane.api.enums import (
    ConditionStatus,
    ConditionType,
    FinaliseReason,
    ProgressingReason,
    RollingStyle,
    RolloutPhase,
    StepState,
    TerminatingReason,
)
from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import CanaryStatus, Rollout, RolloutStatus
from graylane.api.workloads import KINDS
from graylane.planner import analysis, bluegreen
from graylane.planner import conditions as cond
from graylane.planner.actions import (
    AddRolloutFinalizer,
    LabelWorkload,
    RemoveRolloutFinalizer,
    RolloutAction,
    RolloutPlan,
    SetRolloutAnnotation,
)
from graylane.planner.context import Pass, next_step_index
from graylane.planner.finalising import finalise, release_hold
from graylane.planner.observed import RolloutObserved, Workload
from graylane.planner.polling import safety_poll
from graylane.planner.progressing import progressing
from graylane.planner.unsupported import unsupported_event, unsupported_message

__all__ = ["ADMISSION_WINDOW_SECONDS", "WORKLOAD_TYPES", "calculate_status", "plan", "prelude_actions"]

# Phases in which a release is in flight: a lost wake-up there would stall it, so they keep a long
# safety poll (planner/polling.py); every readiness wait itself is woken by a watch event.
_IN_FLIGHT = frozenset({RolloutPhase.PROGRESSING, RolloutPhase.TERMINATING, RolloutPhase.DISABLING})
WORKLOAD_TYPES = {(kind.group, kind.kind): kind.type_label for kind in KINDS}

# The webhook's timeoutSeconds (webhook/install.py TIMEOUT_SECONDS, 10), plus the second the deletion
# timestamp is truncated to and the store that follows an admission.
ADMISSION_WINDOW_SECONDS = 12.0
MSG_HEALTHY = "rollout is healthy"
MSG_NOT_FOUND = "Workload Not Found"
MSG_DISABLED = "Rollout is disabled"
MSG_DISABLING = "Disabling rollout, release resources"
MSG_COMPLETED_DEPLOY = "workload deployment is completed"
MSG_TERMINATING = "Rollout is in terminating"
MSG_PROGRESSING = "Rollout is in Progressing"


def plan(observed: RolloutObserved) -> RolloutPlan:
    """One reconcile's decisions for a Rollout (read as v1beta1)."""
    if bluegreen.is_blue_green(observed.rollout):
        # One step machine for both: blue-green's sub-status is read and stored in its own shape.
        return bluegreen.stored_plan(_plan(bluegreen.working_view(observed)))
    return _plan(observed)


def _plan(observed: RolloutObserved) -> RolloutPlan:
    rollout = observed.rollout
    if _deleting(rollout) and _terminating_completed(rollout.status) and not _held(observed.workload):
        late = _admissions_in_flight(rollout, observed)
        if late > 0:
            return RolloutPlan(requeue_after=late)
        return RolloutPlan(actions=_remove_finalizer(rollout))
    unsupported = unsupported_message(rollout)
    if unsupported is not None and not _deleting(rollout):
        return _unsupported(rollout, unsupported)
    actions = prelude_actions(observed)
    status = calculate_status(observed)
    if status is None:
        # The workload's controller has not observed its latest generation: the Deployment status
        # update that says it has is watched and wakes this Rollout (Kruise re-checks every 3 s).
        return RolloutPlan(actions=actions, requeue_after=_safety_poll(rollout, rollout.status.phase))
    status, requeue, more = _by_phase(observed, status)
    return RolloutPlan(
        actions=(*actions, *more),
        status=status,
        requeue_after=_earliest(requeue, _safety_poll(rollout, status.phase)),
    )


def _admissions_in_flight(rollout: Rollout, observed: RolloutObserved) -> float:
    """Seconds until no webhook admission that read this Rollout before its deletion can still land.

    The webhook confirms a new hold against the Rollout read from the API, so an admission that starts
    after the deletion never holds; one that read it just before may still be on its way (the API server
    gives a webhook call TIMEOUT_SECONDS, then stores the object). The finalizer therefore stays until
    that long after the deletion, and the pass that removes it has read the workload from the API
    (controller/rollout.py) and found it free. Without a workload there is nothing to hold.
    """
    stamp = rollout.metadata.get("deletionTimestamp")
    if observed.workload is None or not isinstance(stamp, str):
        return 0.0
    try:
        deleted = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max((deleted - observed.now).total_seconds() + ADMISSION_WINDOW_SECONDS, 0.0)


def _unsupported(rollout: Rollout, message: str) -> RolloutPlan:
    """A workload kind graylane cannot release: Initial, saying so (never a silent Workload Not Found).
    No finalizer or hash annotation: nothing will be released, and the validating webhook refuses any
    write of such a Rollout but its status."""
    status = RolloutStatus(
        observed_generation=int(rollout.metadata.get("generation", 0)),
        phase=RolloutPhase.INITIAL,
        message=message,
    )
    return RolloutPlan(actions=unsupported_event(rollout, message), status=status)


def _safety_poll(rollout: Rollout, phase: str) -> float | None:
    return safety_poll(str(rollout.metadata.get("uid", ""))) if phase in _IN_FLIGHT else None


def _earliest(*delays: float | None) -> float | None:
    present = [d for d in delays if d is not None]
    return min(present) if present else None


def prelude_actions(observed: RolloutObserved) -> tuple[RolloutAction, ...]:
    """Finalizer, the workload label the mutating webhook selects on, and the plan-hash annotation."""
    rollout, workload = observed.rollout, observed.workload
    actions: list[RolloutAction] = []
    if not _deleting(rollout) and keys.ROLLOUT_FINALIZER not in _finalizers(rollout):
        actions.append(AddRolloutFinalizer(keys.ROLLOUT_FINALIZER))
    type_label = _workload_type(workload)
    # Kruise checks this label among the *annotations* and so re-patches every pass; we check labels.
    if workload is not None and type_label and workload.labels.get(keys.WORKLOAD_TYPE_LABEL) != type_label:
        actions.append(LabelWorkload(keys.WORKLOAD_TYPE_LABEL, type_label))
    wanted = rollout_hash(rollout.spec.strategy)
    if _annotations(rollout).get(keys.ROLLOUT_HASH_ANNOTATION) != wanted:
        actions.append(SetRolloutAnnotation(keys.ROLLOUT_HASH_ANNOTATION, wanted))
    return tuple(actions)


def calculate_status(observed: RolloutObserved) -> RolloutStatus | None:
    """Kruise's calculateRolloutStatus: the new status, or None while the workload's status lags."""
    rollout, workload, now = observed.rollout, observed.workload, observed.now
    status = rollout.status.model_copy(deep=True)
    status.observed_generation = int(rollout.metadata.get("generation", 0))
    if _deleting(rollout):
        if status.phase != RolloutPhase.TERMINATING:
            status.phase = RolloutPhase.TERMINATING
            status.conditions = cond.set_condition(
                status.conditions,
                ConditionType.TERMINATING,
                ConditionStatus.TRUE,
                TerminatingReason.IN_TERMINATING,
                MSG_TERMINATING,
                now,
            )
        return status
    _apply_disabled(rollout, status)
    if not status.phase:
        status.phase = RolloutPhase.INITIAL
    if workload is None:
        return status if rollout.spec.disabled else _workload_not_found(status)
    if _undo_pending(status):
        return status  # the workload is back before the release of the one deleted was undone: finish first
    if not workload.status_consistent:
        return None
    _refresh_observed_workload(status, workload)
    _move_phase(observed, status, workload)
    return status


def _workload_not_found(status: RolloutStatus) -> RolloutStatus:
    """Kruise resets the status to Initial "Workload Not Found". A sub-status means a release (or its
    completed record) may have left the stable Service narrowed, routes on the canary, a canary Service
    and a BatchRelease: graylane shows Initial "Workload Not Found" at once but keeps the sub-status,
    which the undo needs for its task, and resets the rest only when the undo is done (Kruise leaves
    all of it as it was, and a re-created Deployment then meets a stale BatchRelease and routes)."""
    if status.sub_status() is None:
        return _not_found_reset(status)
    status.phase, status.message = RolloutPhase.INITIAL, MSG_NOT_FOUND
    return status


def _not_found_reset(status: RolloutStatus) -> RolloutStatus:
    return RolloutStatus(
        observed_generation=status.observed_generation, phase=RolloutPhase.INITIAL, message=MSG_NOT_FOUND
    )


def _undo_pending(status: RolloutStatus) -> bool:
    """Initial with a sub-status: only `_workload_not_found` stores that (Initial moves on to Healthy in
    the pass that sees a workload, and Healthy is where a sub-status is first written)."""
    return status.phase == RolloutPhase.INITIAL and status.sub_status() is not None


def _apply_disabled(rollout: Rollout, status: RolloutStatus) -> None:
    if not rollout.spec.disabled or status.phase in (RolloutPhase.DISABLED, RolloutPhase.DISABLING):
        return
    if status.phase == RolloutPhase.PROGRESSING or _undo_pending(status):
        # Kruise: only from Progressing. A release of a workload that went is still being undone: its
        # Disabling finishes that undo (Disabled at once would leave the rest of it in place).
        status.phase, status.message = RolloutPhase.DISABLING, MSG_DISABLING
    else:
        status.phase, status.message = RolloutPhase.DISABLED, MSG_DISABLED


def _refresh_observed_workload(status: RolloutStatus, workload: Workload) -> None:
    sub = status.canary_status
    if sub is not None and sub.canary_revision and sub.canary_revision == workload.canary_revision:
        sub.observed_rollout_id = workload.rollout_id
        sub.observed_workload_generation = workload.generation


def _move_phase(observed: RolloutObserved, status: RolloutStatus, workload: Workload) -> None:
    rollout, now = observed.rollout, observed.now
    if status.phase == RolloutPhase.INITIAL:
        status.phase, status.message = RolloutPhase.HEALTHY, MSG_HEALTHY
    elif status.phase == RolloutPhase.HEALTHY and workload.in_rollout_progressing:
        status.phase = RolloutPhase.PROGRESSING
        status.conditions = cond.set_condition(
            status.conditions,
            ConditionType.PROGRESSING,
            ConditionStatus.TRUE,
            ProgressingReason.INITIALIZING,
            MSG_PROGRESSING,
            now,
        )
        status.conditions = cond.remove_condition(status.conditions, ConditionType.SUCCEEDED)
    elif status.phase == RolloutPhase.HEALTHY and status.sub_status() is None:
        status.canary_status = _completed_sub_status(rollout, workload)
        status.message = MSG_COMPLETED_DEPLOY
    elif status.phase == RolloutPhase.DISABLED and not rollout.spec.disabled:
        status.phase, status.message = RolloutPhase.HEALTHY, MSG_HEALTHY


def _completed_sub_status(rollout: Rollout, workload: Workload) -> CanaryStatus:
    """A sub-status "as if completed", so tools can compare observedRolloutID on a first deploy too.

    Outside a release Kruise's workload finder leaves podTemplateHash empty; its stableRevision is the
    oldest active ReplicaSet's hash for canary-style Rollouts and the (then absent) stable-revision label
    for partition-style and blue-green ones.
    """
    steps = len(rollout.spec.strategy.steps())
    # Blue-green reads its workload as partition style does (no extra Deployment).
    partition = rollout.spec.strategy.rolling_style() in (RollingStyle.PARTITION, RollingStyle.BLUE_GREEN)
    return CanaryStatus(
        observed_rollout_id=workload.rollout_id,
        observed_workload_generation=workload.generation,
        canary_revision=workload.canary_revision,
        stable_revision=workload.stable_revision if partition else workload.oldest_active_revision,
        current_step_index=steps,
        next_step_index=next_step_index(rollout, steps),
        current_step_state=StepState.COMPLETED,
        rollout_hash=rollout_hash(rollout.spec.strategy),
    )


def _by_phase(
    observed: RolloutObserved, status: RolloutStatus
) -> tuple[RolloutStatus, float | None, list[RolloutAction]]:
    """Phase handlers: Progressing runs the release; Terminating and Disabling undo it first."""
    p = Pass(observed=observed, status=status)
    if status.phase == RolloutPhase.PROGRESSING:
        progressing(p)
    elif status.phase == RolloutPhase.TERMINATING and _finalised(p, FinaliseReason.DELETE):
        status.conditions = _terminating_done(status)
    elif status.phase == RolloutPhase.DISABLING and _finalised(p, FinaliseReason.DISABLED):
        status.phase, status.message = RolloutPhase.DISABLED, MSG_DISABLED
    elif _undo_pending(status):
        _undo_for_missing_workload(p)
    elif status.phase == RolloutPhase.DISABLED and observed.workload is not None:
        # Disabled straight from Healthy while the webhook had just held the workload (the Rollout had
        # not seen the release yet), or held by an admission whose Rollout cache still showed it enabled:
        # a disabled Rollout is the only one that can let it go, so it does, whenever it sees the hold.
        release_hold(p)
    analysis.settle_runs(p)  # runs that no longer decide anything stop measuring
    _mirror_step(p.status)
    return p.status, p.requeue, p.actions


def _finalised(p: Pass, reason: FinaliseReason) -> bool:
    # Also without a sub-status: a Rollout deleted before it ever saw the release still has to undo
    # the webhook's hold on the workload. Also without a workload (deleted first, or with the namespace):
    # the Services, the gateway's routes, the BatchRelease and a joined TrafficRouting's finalizer are
    # still this Rollout's to undo; only the workload tasks have nothing to do (finalising.py).
    return finalise(p, reason)


def _undo_for_missing_workload(p: Pass) -> None:
    """The workload went while the Rollout stays: undo what its release changed, as a deletion would,
    then reset the status. A workload re-created meanwhile is not the one released: it is left alone
    (no hold to undo, nothing to resume) and found Healthy once the reset is stored."""
    gone = Pass(observed=dataclasses.replace(p.observed, workload=None), status=p.status)
    if finalise(gone, FinaliseReason.DELETE):
        gone.status = _not_found_reset(gone.status)
    p.status, p.requeue = gone.status, gone.requeue
    p.act(*gone.actions)


def _terminating_done(status: RolloutStatus) -> list[RolloutCondition]:
    current = cond.get_condition(status.conditions, ConditionType.TERMINATING)
    if current is None:
        return status.conditions
    done = current.model_copy(update={"reason": TerminatingReason.COMPLETED, "status": ConditionStatus.FALSE})
    return [*(c for c in status.conditions if c.type != ConditionType.TERMINATING), done]


def _mirror_step(status: RolloutStatus) -> None:
    """v1beta1 mirrors the active sub-status' step at the top level for `kubectl get` columns."""
    sub = status.sub_status()
    if sub is not None:
        status.current_step_index = sub.current_step_index
        status.current_step_state = sub.current_step_state


def _remove_finalizer(rollout: Rollout) -> tuple[RolloutAction, ...]:
    if keys.ROLLOUT_FINALIZER in _finalizers(rollout):
        return (RemoveRolloutFinalizer(keys.ROLLOUT_FINALIZER),)
    return ()


def _terminating_completed(status: RolloutStatus) -> bool:
    current = cond.get_condition(status.conditions, ConditionType.TERMINATING)
    return current is not None and current.reason == TerminatingReason.COMPLETED


def _workload_type(workload: Workload | None) -> str:
    if workload is None:
        return ""
    group = workload.api_version.split("/")[0] if "/" in workload.api_version else ""
    return WORKLOAD_TYPES.get((group, workload.kind), "")


def _held(workload: Workload | None) -> bool:
    """The webhook holds the workload for a release (a late admission, after the finalisation ended)."""
    return workload is not None and keys.IN_PROGRESSING_ANNOTATION in workload.annotations


def _deleting(rollout: Rollout) -> bool:
    return bool(rollout.metadata.get("deletionTimestamp"))


def _finalizers(rollout: Rollout) -> list[str]:
    return list(rollout.metadata.get("finalizers") or [])


def _annotations(rollout: Rollout) -> dict[str, str]:
    return dict(rollout.metadata.get("annotations") or {})
