"""Finalisation sequences (reference §2.8): undo what a release set up, one idempotent task at a time.

The task in progress is recorded in `finalisingStep`, so a crash resumes at the same task. Tasks that
need nothing done complete in the same pass; a task that had to act is checked on the next pass.

Finalisation ends in a checked state, not in an absence: the workload must be *seen* handed back. The
first pass removes the in-progressing annotation (as Kruise does, so the webhook stops holding the
workload) and, when no BatchRelease is left that will resume it (none yet: deleted 0.3 s after the
release began; or one that already completed), unpauses it in the same guarded patch: once the
annotation is gone nothing else would say the pause was ours. ResumeWorkload is done only when the
BatchRelease reports Completed (which it does only after seeing the workload handed back) and the
workload is seen unpaused; ReleaseWorkloadControl only when the BatchRelease is seen gone.
A workload that is gone (deleted before its Rollout, or with it by a namespace deletion) changes only
the workload tasks: they are done at once, while the traffic tasks (Services, gateway routes) and the
BatchRelease's deletion run as usual, as in Kruise, whose finalisation runs with a nil workload.
Pure: no I/O.
"""

from __future__ import annotations

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.enums import (
    BatchReleasePhase,
    ConditionType,
    FinaliseReason,
    FinalisingStep,
    FinalizingPolicy,
    ProgressingReason,
    RollingStyle,
)
from graylane.planner import bluegreen, conditions, traffic, trafficrouting_link
from graylane.planner.actions import (
    DeleteBatchRelease,
    PatchBatchRelease,
    RemoveWorkloadAnnotation,
    RemoveWorkloadLabel,
    UnpauseWorkload,
)
from graylane.planner.context import Pass

__all__ = ["ROLLBACK_SEQUENCE", "SUCCESS_SEQUENCE", "finalise", "release_hold"]

F = FinalisingStep
SUCCESS_SEQUENCE = (
    F.RESTORE_STABLE_SERVICE,
    F.ROUTE_TRAFFIC_TO_STABLE,
    F.REMOVE_CANARY_SERVICE,
    F.RESUME_WORKLOAD,
    F.RELEASE_WORKLOAD_CONTROL,
)
# On rollback traffic goes back to stable first, so no request reaches the bad version meanwhile.
ROLLBACK_SEQUENCE = (
    F.ROUTE_TRAFFIC_TO_STABLE,
    F.RESUME_WORKLOAD,
    F.RELEASE_WORKLOAD_CONTROL,
    F.RESTORE_STABLE_SERVICE,
    F.REMOVE_CANARY_SERVICE,
)
MAX_TASKS_PER_PASS = 8


def finalise(p: Pass, reason: FinaliseReason) -> bool:
    """Advance the finalisation for `reason`; True once every task is done."""
    # The decision is stored before its writes go out (runtime/loop.py), so a pass that still had to
    # act is never the one that says "done": its writes might not land, and nothing would repeat them.
    acted = trafficrouting_link.unlink(p)
    acted = release_hold(p) or acted
    if p.status.canary_status is None:
        return not acted  # the release never started: only the webhook's hold to undo
    sequence = _sequence(p, reason)
    if not p.sub.finalising_step or p.sub.finalising_step not in (*sequence, F.END):
        p.sub.finalising_step = sequence[0]
        p.touch()
    for _ in range(MAX_TASKS_PER_PASS):
        if p.sub.finalising_step == F.END:
            return not acted
        if not _task(p, F(p.sub.finalising_step), reason):
            # No fixed re-check (Kruise waits 3 s): a traffic task asks for its own grace period, and
            # the BatchRelease tasks are woken by the BatchRelease's status and deletion events.
            return False
        p.sub.finalising_step = _next(sequence, F(p.sub.finalising_step))
        p.touch()
    return p.sub.finalising_step == F.END and not acted


def _sequence(p: Pass, reason: FinaliseReason) -> tuple[FinalisingStep, ...]:
    if bluegreen.is_blue_green(p.rollout):
        return bluegreen.finalise_sequence(reason)
    return ROLLBACK_SEQUENCE if reason is FinaliseReason.ROLLBACK else SUCCESS_SEQUENCE


def _next(sequence: tuple[FinalisingStep, ...], task: FinalisingStep) -> FinalisingStep:
    index = sequence.index(task)
    return sequence[index + 1] if index + 1 < len(sequence) else F.END


def _task(p: Pass, task: FinalisingStep, reason: FinaliseReason) -> bool:
    if task is F.RESUME_WORKLOAD:
        return _resume_workload(p, wait_ready=reason is FinaliseReason.SUCCESS)
    if task is F.RELEASE_WORKLOAD_CONTROL:
        return _release_workload_control(p)
    return traffic.task_done(p, task)


def release_hold(p: Pass) -> bool:
    """Remove the in-progressing annotation; unpause too when no BatchRelease will. True if it acted.

    Unpausing a partition-style workload also drops the webhook's stable-revision label: the
    BatchRelease's hand-back would have removed it, and none is left to do so (Kruise leaves the label
    on canary-style workloads, and so do we).
    """
    if p.observed.workload is None or keys.IN_PROGRESSING_ANNOTATION not in p.workload.annotations:
        return False  # a workload that is gone holds nothing
    p.act(RemoveWorkloadAnnotation(keys.IN_PROGRESSING_ANNOTATION))
    br = p.observed.batch_release
    if p.workload.paused and (br is None or br.status.phase == BatchReleasePhase.COMPLETED):
        p.act(UnpauseWorkload())
        partition = p.rollout.spec.strategy.rolling_style() == RollingStyle.PARTITION
        if partition and keys.STABLE_REVISION_LABEL in p.workload.labels:
            p.act(RemoveWorkloadLabel(keys.STABLE_REVISION_LABEL))
    return True


def _unpaused(p: Pass) -> bool:
    """The workload is seen unpaused (or was not held by a release in flight: a person's pause stays)."""
    if not p.workload.paused or not _in_flight(p):
        return True
    p.act(UnpauseWorkload())
    return False


def _in_flight(p: Pass) -> bool:
    progressing = conditions.get_condition(p.status.conditions, ConditionType.PROGRESSING)
    return progressing is not None and progressing.reason != ProgressingReason.COMPLETED


def _resume_workload(p: Pass, *, wait_ready: bool) -> bool:
    """Hand the workload back: batchPartition null; done when the BatchRelease reports Completed and
    the workload is seen unpaused. A workload that is gone has nothing to hand back: the BatchRelease
    is deleted next (Kruise patches it and waits for it to report Completed, which one whose workload
    is gone reaches only by its own finalisation)."""
    if p.observed.workload is None:
        return True
    br = p.observed.batch_release
    if br is None:
        return _unpaused(p)
    plan = br.spec.release_plan
    if plan.batch_partition is None and br.status.phase == BatchReleasePhase.COMPLETED:
        return _unpaused(p)
    policy = FinalizingPolicy.WAIT_RESUME if wait_ready else FinalizingPolicy.IMMEDIATE
    if plan.batch_partition is None and plan.finalizing_policy == policy:
        return False  # already asked; wait for the BatchRelease controller
    p.act(PatchBatchRelease({"spec": {"releasePlan": {"batchPartition": None, "finalizingPolicy": policy}}}))
    return False


def _release_workload_control(p: Pass) -> bool:
    br: BatchRelease | None = p.observed.batch_release
    if br is None:
        return True
    if not br.metadata.get("deletionTimestamp"):
        p.act(DeleteBatchRelease())
    return False
