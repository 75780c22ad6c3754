"""The canary step machine (reference §2.5): BeforeStepUpgrade → StepUpgrade → StepTrafficRouting →
StepMetricsAnalysis → StepPaused → StepReady → (next step | Completed).

One small pure handler per state. A handler returns True to fall through to the state it set in the
same pass (Kruise often waits a reconcile between states; falling through shows the same states in
the same order, but sooner and with fewer status writes) and False to stop the pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from graylane.api.batchrelease import BatchRelease, ReleaseBatch, ReleasePlan
from graylane.api.enums import BatchState, FinalisingStep, RollingStyle, StepState
from graylane.api.hashing import release_plan_hash
from graylane.api.rollout_v1beta1 import Rollout, is_real_partition
from graylane.planner import analysis, bluegreen, rollback, traffic
from graylane.planner.actions import EnsureBatchRelease, PatchBatchRelease, RecordEvent
from graylane.planner.context import Pass, next_step_index
from graylane.planner.trafficrouting_link import linked_name
from graylane.planner.weights import scale

__all__ = ["desired_release_plan", "rolling_style", "run_canary"]

MAX_STATES_PER_PASS = 16
S = StepState


def run_canary(p: Pass) -> None:
    """One pass of the step machine over `p.status`."""
    _sync_from_batch_release(p)
    if not p.sub.pod_template_hash:
        p.sub.pod_template_hash = p.workload.pod_template_hash
    _correct_next_index(p)
    if _jump(p):
        return
    if not analysis.background(p):  # the release-wide analysis failed: rolling back
        return
    # A step without traffic after steps with traffic: undo the routing before moving pods.
    if not traffic.has_traffic(p.current_step) and not traffic.finalise_routing(p):
        return
    for _ in range(MAX_STATES_PER_PASS):
        handler = HANDLERS.get(p.sub.current_step_state)
        if handler is None or not handler(p):
            return


def rolling_style(rollout: Rollout) -> RollingStyle | None:
    """Kruise's rolling style, except for a Deployment in an end-to-end lane (it names a TrafficRouting)
    whose pods get gray labels (patchPodTemplateMetadata): that one runs in canary style. Kruise runs
    the full-link page's v1beta1 file in partition style, where the new pod is one of the Deployment's
    own, without the labels, so the lane cannot find it; the page promises a gray Deployment whose pod
    carries them (and the v1alpha1 file, converted, already gets one)."""
    style = rollout.spec.strategy.rolling_style()
    canary = rollout.spec.strategy.canary
    ref = rollout.spec.workload_ref
    gray_labels = canary is not None and canary.patch_pod_template_metadata is not None
    deployment = ref.api_version == "apps/v1" and ref.kind == "Deployment"
    if style is RollingStyle.PARTITION and gray_labels and deployment and linked_name(rollout):
        return RollingStyle.CANARY
    return style


def _real_partition(rollout: Rollout) -> bool:
    return is_real_partition(rollout) and rolling_style(rollout) is not RollingStyle.CANARY


def _before_upgrade(p: Pass) -> bool:
    if traffic.has_traffic(p.current_step):
        expected = scale(p.current_step.replicas, p.workload.replicas)
        # ingress-nginx#9635: never leave a stable Service with no backends behind an Ingress.
        if (
            expected >= p.workload.replicas
            and _real_partition(p.rollout)
            and not traffic.task_done(p, FinalisingStep.RESTORE_STABLE_SERVICE)
        ):
            return False
        if p.sub.current_step_index == 1 and not traffic.task_done(p, traffic.PATCH_STABLE_SERVICE):
            return False
        p.touch()
    p.sub.current_step_state = S.STEP_UPGRADE
    return True


def _upgrade(p: Pass) -> bool:
    p.status.message = (
        f"Rollout is in step({p.sub.current_step_index}/{len(p.steps)}), and upgrade workload to new version"
    )
    desired = desired_release_plan(p, batch=p.sub.current_step_index - 1)
    br = p.observed.batch_release
    annotations = rollback.batch_release_annotations(p)
    if br is None or _plan_differs(br, desired) or _lacks(br, annotations):
        p.act(EnsureBatchRelease(_br_spec(p, desired), annotations, exists=br is not None))
        return False
    if not _batch_done(br, p.sub.current_step_index):
        return False
    index = p.sub.current_step_index
    p.act(RecordEvent("Normal", "Progressing", f"upgrade step({index}) canary pods with new versions done"))
    p.sub.pod_template_hash = p.workload.pod_template_hash
    full = scale(p.current_step.replicas, p.workload.replicas) >= p.workload.replicas
    p.sub.current_step_state = (
        S.STEP_METRICS_ANALYSIS if full and _real_partition(p.rollout) else S.STEP_TRAFFIC_ROUTING
    )
    p.touch()
    return True


def _traffic_routing(p: Pass) -> bool:
    if not traffic.task_done(p, traffic.ROUTE):
        return False  # the task asked for its grace period or retry itself
    p.sub.current_step_state = S.STEP_METRICS_ANALYSIS
    p.touch()
    return True


def _metrics_analysis(p: Pass) -> bool:
    return analysis.metrics_analysis(p)  # without a step analysis: straight on to StepPaused


def _paused(p: Pass) -> bool:
    step, index, total = p.current_step, p.sub.current_step_index, len(p.steps)
    gate = analysis.pause_gate(p)
    if gate is analysis.Gate.HOLD:
        return False
    # A successful step analysis approves the step (a pause.duration still applies after it).
    promoted = gate is analysis.Gate.PROMOTE and step.pause.duration is None
    # Canary only: a last step of 100% ends the release at once; blue-green pauses there too, with
    # every request on the new pods and the old ones still up, until approved.
    last = index == total and step.replicas == "100%" and not bluegreen.is_blue_green(p.rollout)
    if last or promoted:
        return _to_ready(p)
    if step.pause.duration is None:
        p.status.message = (
            f"Rollout is in step({index}/{total}), and you need manually confirm to enter the next step"
        )
        return False
    p.status.message = (
        f"Rollout is in step({index}/{total}), "
        f"and wait duration({step.pause.duration} seconds) to enter the next step"
    )
    started = p.sub.last_update_time or p.observed.now
    due = started + dt.timedelta(seconds=step.pause.duration)
    # Times have 1 s resolution (as stored in status), so "due" includes the second it falls on;
    # a strict comparison would re-check with zero delay until the next second.
    if due <= p.observed.now:
        return _to_ready(p)
    p.wait((due - p.observed.now).total_seconds())
    return False


def _to_ready(p: Pass) -> bool:
    p.sub.current_step_state = S.STEP_READY
    p.touch()
    return True


def _ready(p: Pass) -> bool:
    p.touch()
    if p.sub.current_step_index < len(p.steps):
        p.sub.current_step_index += 1
        p.sub.next_step_index = next_step_index(p.rollout, p.sub.current_step_index)
        p.sub.current_step_state = S.BEFORE_STEP_UPGRADE
        return True
    p.sub.current_step_state = S.COMPLETED
    return False


HANDLERS: dict[str, Callable[[Pass], bool]] = {
    S.BEFORE_STEP_UPGRADE: _before_upgrade,
    S.STEP_UPGRADE: _upgrade,
    S.STEP_TRAFFIC_ROUTING: _traffic_routing,
    S.STEP_METRICS_ANALYSIS: _metrics_analysis,
    S.STEP_PAUSED: _paused,
    S.STEP_READY: _ready,
}


# -- jumps and corrections ----------------------------------------------------------------------


def _correct_next_index(p: Pass) -> None:
    """A user-written nextStepIndex outside 1..len is replaced by the natural next step."""
    nxt = p.sub.next_step_index
    if nxt <= 0 or nxt > len(p.steps):
        p.sub.next_step_index = next_step_index(p.rollout, p.sub.current_step_index)


def _jump(p: Pass) -> bool:
    """Step jump: the user (or a plan change) set nextStepIndex to something other than current+1."""
    natural = next_step_index(p.rollout, p.sub.current_step_index)
    target = p.sub.next_step_index
    if target == natural or target <= 0:
        return False
    same_replicas = p.steps[target - 1].replicas == _deployed_replicas(p)
    p.sub.current_step_index = target
    p.sub.next_step_index = next_step_index(p.rollout, target)
    p.sub.current_step_state = S.STEP_TRAFFIC_ROUTING if same_replicas else S.BEFORE_STEP_UPGRADE
    p.touch()
    return True


def _deployed_replicas(p: Pass) -> object:
    """The replicas the BatchRelease was last asked for; Kruise compares with the (possibly edited) spec
    instead, so raising the current step's replicas mid-release never scaled the pods. We compare with
    what is deployed."""
    br = p.observed.batch_release
    plan = br.spec.release_plan if br is not None else None
    if plan is None or plan.batch_partition is None or not 0 <= plan.batch_partition < len(plan.batches):
        return p.current_step.replicas
    return plan.batches[plan.batch_partition].canary_replicas


# -- the BatchRelease ----------------------------------------------------------------------------


def desired_release_plan(p: Pass, *, batch: int) -> ReleasePlan:
    if bluegreen.is_blue_green(p.rollout):
        return bluegreen.release_plan(p, batch=batch)
    canary = p.rollout.spec.strategy.canary
    assert canary is not None, "the canary planner needs a canary strategy"
    return ReleasePlan(
        batches=[ReleaseBatch(canary_replicas=step.replicas or 0) for step in p.steps],
        batch_partition=batch,
        rollout_id=p.sub.observed_rollout_id,
        failure_threshold=canary.failure_threshold,
        patch_pod_template_metadata=canary.patch_pod_template_metadata,
        rolling_style=rolling_style(p.rollout) or "",
        enable_extra_workload_for_canary=canary.enable_extra_workload_for_canary,
    )


def _comparable(plan: ReleasePlan) -> dict[str, Any]:
    """The release plan without what finalisation adds, to decide whether an update is needed."""
    obj = plan.to_obj()
    obj.pop("finalizingPolicy", None)
    return obj


def _plan_differs(br: BatchRelease, desired: ReleasePlan) -> bool:
    return _comparable(br.spec.release_plan) != _comparable(desired)


def _lacks(br: BatchRelease, annotations: dict[str, str]) -> bool:
    current = br.metadata.get("annotations") or {}
    return any(current.get(key) != value for key, value in annotations.items())


def _br_spec(p: Pass, plan: ReleasePlan) -> dict[str, Any]:
    ref = p.rollout.spec.workload_ref
    return {
        "workloadRef": {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name},
        "releasePlan": plan.to_obj(),
    }


def _batch_done(br: BatchRelease, step_index: int) -> bool:
    """The BatchRelease has seen this plan, and its current batch is Ready and at least this step."""
    status = br.status
    return (
        status.observed_release_plan_hash == release_plan_hash(br.spec.release_plan)
        and int(br.metadata.get("generation", 0)) == status.observed_generation
        and status.canary_status.batch_state == BatchState.READY
        and status.canary_status.current_batch + 1 >= step_index
    )


def _sync_from_batch_release(p: Pass) -> None:
    """Mirror batch progress into the Rollout, and push a changed rollout-id into the BatchRelease."""
    br = p.observed.batch_release
    if br is None:
        return
    canary = br.status.canary_status
    p.sub.canary_replicas = canary.updated_replicas
    p.sub.canary_ready_replicas = canary.updated_ready_replicas
    p.sub.message = (
        f"BatchRelease is at state {canary.batch_state}, rollout-id {br.status.observed_rollout_id}, "
        f"step {canary.current_batch + 1}" + (f", {br.status.message}" if br.status.message else "")
    )
    if p.sub.observed_rollout_id != br.spec.release_plan.rollout_id:
        p.act(PatchBatchRelease({"spec": {"releasePlan": {"rolloutID": p.sub.observed_rollout_id}}}))
