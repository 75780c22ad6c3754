"""The BatchRelease state machine (reference §1.8, §2.7) as a pure function of what was observed.

What this module does: `plan(observed, control)` turns one BatchRelease, the workload as seen in the
informer caches and the current time into the new status, the ordered workload actions and the requeue
delay. Phases: Preparing (take control of the workload) → Progressing (per batch: Upgrading → Verifying →
Ready) → Finalizing (hand the workload back) → Completed. Before the phase handler runs, the special cases
of Kruise's `syncStatusBeforeExecuting` are applied in Kruise's order (plan finalizing, plan changed,
plan unhealthy, workload gone / scaled / new template / not yet observed by its controller); a status
that changed there is written first, alone, so the state machine never runs on a status that is not
persisted. How a rolling style drives the workload is a `Control` (canary_style, partition_style).

It also holds what both styles share: the action and snapshot types, batch readiness with the
rollout-id pod labels (`rollouts.kruise.io/rollout-id` + `rollout-batch-id`), and small dict readers.

What it must not do: I/O, reading a clock, or importing kube/controller code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease, BatchReleaseCanaryStatus, BatchReleaseStatus, ReleaseBatch
from graylane.api.enums import BatchReleasePhase, BatchState
from graylane.api.hashing import release_plan_hash
from graylane.planner.polling import safety_poll
from graylane.planner.weights import batch_ready, scale
from graylane.planner.writes import batch_release_status_changed

__all__ = [
    "POD_LABEL_RECHECK_SECONDS",
    "BatchReleaseAction",
    "BatchReleaseObserved",
    "BatchReleasePlan",
    "Control",
    "CreateCanary",
    "Delete",
    "Patch",
    "Step",
    "WorkloadInfo",
    "batch_step",
    "plan",
    "pod_label_patches",
    "rollback_in_batches",
]

Obj = Mapping[str, Any]
# Kruise polls every in-flight BatchRelease every 2 s (DefaultDuration); here every wait is woken by a
# watch event instead (the workload, its canary Deployments and their ReplicaSets map to this
# BatchRelease), except pod labels: pods are listed, not watched, so after labelling some we look again
# soon to see the labels land.
POD_LABEL_RECHECK_SECONDS = 1.0


# --- actions and snapshots ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Patch:
    """JSON merge patch of one object in the BatchRelease's namespace (kind: Deployment, Pod, ...).

    `guard`: the resourceVersion the decision read, when the patch follows from that object's state;
    empty when the patch sets fixed values that are right whatever the object's version (idempotent).
    """

    kind: str
    name: str
    body: Mapping[str, Any]
    guard: str = ""


@dataclasses.dataclass(frozen=True)
class CreateCanary:
    """Create the canary Deployment `body` (its name is derived from the BatchRelease and the template,
    so a repeated create finds the name taken instead of making a second canary)."""

    body: Mapping[str, Any]
    owner_uid: str
    stable_name: str


@dataclasses.dataclass(frozen=True)
class Delete:
    """Delete one object; `uid` (when known) makes sure it is the incarnation that was observed."""

    kind: str
    name: str
    uid: str = ""


BatchReleaseAction = Patch | CreateCanary | Delete


@dataclasses.dataclass(frozen=True)
class BatchReleaseObserved:
    """One BatchRelease and its workload, from the caches. `workload` None: the Deployment is gone."""

    release: BatchRelease
    workload: Obj | None
    now: datetime
    update_revision: str = ""  # graylane's revision of the workload's current pod template
    stable_revision: str = ""  # pod-template-hash of the stable ReplicaSet
    canaries: tuple[Obj, ...] = ()  # Deployments whose controller is this BatchRelease
    pods: tuple[Obj, ...] = ()  # pods on the update revision; listed only when a rolloutID is set
    # Blue-green: the workload's own ReplicaSets (both versions) and the namespace's HPAs.
    replica_sets: tuple[Obj, ...] = ()
    hpas: tuple[Obj, ...] = ()
    # The workload is still held for a release: its Rollout is alive and it carries the in-progressing
    # annotation (a continuous release deletes this BatchRelease to start another one). Finalizing with
    # batchPartition set then keeps the workload paused for the next BatchRelease, as Kruise does;
    # otherwise (batchPartition null, a BatchRelease deleted on its own or with its Rollout) it is
    # handed back to its native controller.
    release_held: bool = True

    @property
    def hand_back(self) -> bool:
        """Whether finalizing gives the workload back to its native controller (resumed, restored)."""
        return self.release.spec.release_plan.batch_partition is None or not self.release_held


@dataclasses.dataclass(frozen=True)
class WorkloadInfo:
    """Kruise's `util.WorkloadInfo`, as far as the special cases and the status need it."""

    replicas: int
    observed: bool  # status.observedGeneration >= generation
    promoted: bool  # status.replicas == status.updatedReplicas
    updated: int
    updated_ready: int
    update_revision: str
    stable_revision: str


@dataclasses.dataclass(frozen=True)
class Step:
    """Outcome of one control call: whether the step is done, and what to do to get there."""

    done: bool
    actions: tuple[BatchReleaseAction, ...] = ()
    # Initialize of a rollback in batches: the pods already on the target revision (status's
    # canaryStatus.noNeedUpdateReplicas); None otherwise.
    no_need_update: int | None = None


class Control(Protocol):
    """How one rolling style drives one workload kind; every method is pure."""

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None: ...

    def initialize(self, obs: BatchReleaseObserved) -> Step: ...

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step: ...

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step: ...

    def finalize(self, obs: BatchReleaseObserved) -> Step: ...


@dataclasses.dataclass(frozen=True)
class BatchReleasePlan:
    """Ordered actions, the status to write (None: keep), and when to look again (None: on events)."""

    actions: tuple[BatchReleaseAction, ...] = ()
    status: BatchReleaseStatus | None = None
    requeue_after: float | None = None
    finalizers: tuple[str, ...] | None = None  # the BatchRelease's new finalizer list, if it changes


# --- the state machine ----------------------------------------------------------------------------


def plan(obs: BatchReleaseObserved, control: Control) -> BatchReleasePlan:
    """One reconcile of a BatchRelease."""
    br = obs.release
    finalizers = _finalizers(br)
    if _deleting(br.metadata) and br.status.phase == BatchReleasePhase.COMPLETED:
        return BatchReleasePlan(finalizers=finalizers)
    # Kruise skips reading the workload of a BatchRelease being deleted: it only finalizes.
    info = None if _deleting(br.metadata) else control.info(obs)
    status, stop = _special_cases(obs, _initialized(br.status), info)
    _refresh(br, status, info)
    if stop or batch_release_status_changed(br.status, status):
        # Persist the special case first: the state machine must only ever run on a stored status.
        # The status write (or the workload event a stop waits for) wakes the next pass.
        return BatchReleasePlan(
            status=_finish(br, status), requeue_after=_idle(br, status), finalizers=finalizers
        )
    handler = _PHASES.get(status.phase, _prepare)
    actions = handler(obs, control, status)
    if handler is _prepare and status.phase == BatchReleasePhase.PROGRESSING:
        # Start the first batch in the same pass (Kruise waits a reconcile): one status write less.
        actions = (*actions, *_progress(obs, control, status))
    requeue = POD_LABEL_RECHECK_SECONDS if _labels_pods(actions) else _idle(br, status)
    return BatchReleasePlan(
        actions=actions, status=_finish(br, status), requeue_after=requeue, finalizers=finalizers
    )


def _idle(br: BatchRelease, status: BatchReleaseStatus) -> float | None:
    """Nothing time-based to wait for: events wake the pass; a long safety poll while in flight, for
    the pods we list but do not watch and as a bound on a lost wake-up."""
    if status.phase == BatchReleasePhase.COMPLETED:
        return None
    return safety_poll(str(br.metadata.get("uid", "")))


def _labels_pods(actions: Iterable[BatchReleaseAction]) -> bool:
    return any(isinstance(a, Patch) and a.kind == "Pod" for a in actions)


def _finalizers(br: BatchRelease) -> tuple[str, ...] | None:
    """Kruise's handleFinalizer: add while alive, drop once deleting and Completed."""
    current = tuple(br.metadata.get("finalizers") or ())
    if _deleting(br.metadata):
        if br.status.phase == BatchReleasePhase.COMPLETED and keys.BATCH_RELEASE_FINALIZER in current:
            return tuple(f for f in current if f != keys.BATCH_RELEASE_FINALIZER)
        return None
    return None if keys.BATCH_RELEASE_FINALIZER in current else (*current, keys.BATCH_RELEASE_FINALIZER)


def _initialized(status: BatchReleaseStatus) -> BatchReleaseStatus:
    return status.model_copy(deep=True) if status.phase else _reset(status.model_copy(deep=True))


def _reset(status: BatchReleaseStatus) -> BatchReleaseStatus:
    status.phase = BatchReleasePhase.PREPARING
    status.stable_revision = status.update_revision = status.observed_release_plan_hash = ""
    status.observed_workload_replicas = -1  # -1: "not recorded yet", so no scaling is detected
    status.canary_status = BatchReleaseCanaryStatus()
    return status


def _special_cases(
    obs: BatchReleaseObserved, status: BatchReleaseStatus, info: WorkloadInfo | None
) -> tuple[BatchReleaseStatus, bool]:
    """Kruise's ordered special cases: (new status, True when this round must stop after writing it)."""
    br, old = obs.release, obs.release.status
    progressing = old.phase == BatchReleasePhase.PROGRESSING
    if old.phase == BatchReleasePhase.COMPLETED:
        return status, True
    if _deleting(br.metadata) or old.phase == BatchReleasePhase.FINALIZING or _partition(br) is None:
        status.phase = BatchReleasePhase.FINALIZING
        return status, False
    if progressing and old.observed_release_plan_hash != release_plan_hash(br.spec.release_plan):
        _recalculate(br, status)
        return status, False
    if progressing and old.canary_status.current_batch >= len(br.spec.release_plan.batches):
        return _reset(BatchReleaseStatus()), False  # a batch index past the plan: start over
    return status, _workload_cases(obs, status, info)


def _workload_cases(obs: BatchReleaseObserved, status: BatchReleaseStatus, info: WorkloadInfo | None) -> bool:
    old = obs.release.status
    if info is None:
        if old.phase not in ("", "Initial"):
            status.phase = BatchReleasePhase.FINALIZING  # the workload is gone: release what is left
        return False
    if not info.observed:
        return True  # its controller has not caught up: the numbers cannot be trusted yet
    if _rolling_back_in_batches(obs.release, info):
        # Kruise's WorkloadRollbackInBatch: prepare again, for the revision the workload went back to.
        fresh = _reset(BatchReleaseStatus())
        status.phase, status.canary_status = fresh.phase, fresh.canary_status
        status.update_revision, status.observed_workload_replicas = info.update_revision, -1
        return True
    if old.phase != BatchReleasePhase.PROGRESSING:
        return False
    scaled = status.observed_workload_replicas not in (-1, info.replicas)
    if info.promoted:
        # Every pod is on the new revision, so there is no batch to redo; but the new size is recorded
        # (Kruise's promoted check returns first and leaves it stale, e.g. 10 after a scale-in to 4,
        # and a later template change is then misread as a scale).
        if scaled:
            status.observed_workload_replicas = info.replicas
        return False
    if scaled:
        status.canary_status.batch_ready_time = None
        status.canary_status.batch_state = BatchState.UPGRADING
        status.observed_workload_replicas = info.replicas
        return False
    if status.update_revision and info.update_revision != status.update_revision:
        # A newer template mid-release: stop; the Rollout restarts the release (continuous release).
        status.update_revision = info.update_revision
        return True
    return False


def rollback_in_batches(br: BatchRelease) -> bool:
    """The Rollout asked for its rollback to be released in batches (the annotation Kruise copies)."""
    return bool((br.metadata.get("annotations") or {}).get(keys.ROLLBACK_IN_BATCH_ANNOTATION))


def _rolling_back_in_batches(br: BatchRelease, info: WorkloadInfo) -> bool:
    """Kruise's IsRollback: the workload's update revision is the release's stable one again, and the
    pods already on it have not been counted yet (the annotation may arrive after this BatchRelease saw
    the new template and took it as its update revision: the stable one still says it is a rollback)."""
    stable = br.status.stable_revision
    marked = br.status.canary_status.no_need_update_replicas is not None
    progressing = br.status.phase == BatchReleasePhase.PROGRESSING  # not yet prepared again
    return (
        rollback_in_batches(br)
        and progressing
        and not marked
        and bool(stable)
        and info.update_revision == stable
    )


def _recalculate(br: BatchRelease, status: BatchReleaseStatus) -> None:
    """Plan changed: resume at batchPartition, or at batch 0 when the rollout id changed (relabel pods)."""
    plan_ = br.spec.release_plan
    current = 0
    partition = _partition(br)
    if partition is not None and plan_.rollout_id == br.status.observed_rollout_id:
        current = min(partition, len(plan_.batches) - 1)
    status.canary_status.batch_ready_time = None
    status.canary_status.current_batch = max(current, 0)
    status.canary_status.batch_state = BatchState.UPGRADING
    status.observed_rollout_id = plan_.rollout_id
    status.observed_release_plan_hash = release_plan_hash(plan_)


def _refresh(br: BatchRelease, status: BatchReleaseStatus, info: WorkloadInfo | None) -> None:
    if info is not None:
        status.canary_status.updated_replicas = info.updated
        status.canary_status.updated_ready_replicas = info.updated_ready
    if not status.observed_release_plan_hash:
        status.observed_release_plan_hash = release_plan_hash(br.spec.release_plan)
    status.observed_rollout_id = br.spec.release_plan.rollout_id


def _finish(br: BatchRelease, status: BatchReleaseStatus) -> BatchReleaseStatus:
    status.observed_generation = int(br.metadata.get("generation", 0))
    return status


def _prepare(
    obs: BatchReleaseObserved, control: Control, status: BatchReleaseStatus
) -> tuple[BatchReleaseAction, ...]:
    status.phase = BatchReleasePhase.PREPARING
    step = control.initialize(obs)
    info = control.info(obs)
    if step.no_need_update is not None:
        status.canary_status.no_need_update_replicas = step.no_need_update
    if step.done and info is not None:
        status.phase = BatchReleasePhase.PROGRESSING
        status.observed_workload_replicas = info.replicas
        status.stable_revision = info.stable_revision
        status.update_revision = info.update_revision
    return step.actions


def _progress(
    obs: BatchReleaseObserved, control: Control, status: BatchReleaseStatus
) -> tuple[BatchReleaseAction, ...]:
    batch = status.canary_status
    state = batch.batch_state if batch.batch_state in _BATCH_STATES else BatchState.UPGRADING
    return _BATCH_STATES[state](obs, control, status)


def _upgrading(
    obs: BatchReleaseObserved, control: Control, status: BatchReleaseStatus
) -> tuple[BatchReleaseAction, ...]:
    batch = status.canary_status
    batch.batch_state = BatchState.UPGRADING
    step = control.upgrade(obs, batch.current_batch)
    if step.done:
        batch.batch_state = BatchState.VERIFYING
        status.message = ""
    return step.actions


def _verifying(
    obs: BatchReleaseObserved, control: Control, status: BatchReleaseStatus
) -> tuple[BatchReleaseAction, ...]:
    batch = status.canary_status
    step = control.check(obs, batch.current_batch)
    if step.done:
        batch.batch_ready_time = obs.now
        batch.batch_state = BatchState.READY
        return step.actions
    # Not ready yet. While the upgrade has nothing to do (the target is set, the pods are coming up or
    # the workload's controller has not observed the change yet) stay in Verifying: going back to
    # Upgrading on every such pass made the state flap, each flip a BatchRelease and a Rollout status
    # write. Only a workload that drifted below the batch target needs the upgrade redone.
    # (Pod label patches do not count: the check above already asks for those.)
    if any(not _labels_pods((a,)) for a in control.upgrade(obs, batch.current_batch).actions):
        batch.batch_state = BatchState.UPGRADING
    return step.actions


def _ready(
    obs: BatchReleaseObserved, control: Control, status: BatchReleaseStatus
) -> tuple[BatchReleaseAction, ...]:
    """A Ready batch is re-checked every pass; it moves on once batchPartition allows the next one."""
    batch = status.canary_status
    step = control.check(obs, batch.current_batch)
    if not step.done:
        batch.batch_ready_time = None
        batch.batch_state = BatchState.UPGRADING
        return step.actions
    partition = _partition(obs.release)
    last = len(obs.release.spec.release_plan.batches) - 1
    # Kruise also steps past the last batch (then resets the status as "unhealthy"); stop at the last.
    if (partition is None or partition > batch.current_batch) and batch.current_batch < last:
        batch.current_batch += 1
        batch.batch_state = BatchState.UPGRADING
    return step.actions


def _finalizing(
    obs: BatchReleaseObserved, control: Control, status: BatchReleaseStatus
) -> tuple[BatchReleaseAction, ...]:
    step = control.finalize(obs)
    if step.done:
        status.phase = BatchReleasePhase.COMPLETED
    return step.actions


Handler = Callable[[BatchReleaseObserved, Control, BatchReleaseStatus], tuple[BatchReleaseAction, ...]]
_PHASES: dict[str, Handler] = {
    BatchReleasePhase.PREPARING: _prepare,
    BatchReleasePhase.PROGRESSING: _progress,
    BatchReleasePhase.FINALIZING: _finalizing,
    BatchReleasePhase.COMPLETED: lambda *_: (),  # unreachable: Completed stops before the phases
}
_BATCH_STATES: dict[str, Handler] = {
    BatchState.UPGRADING: _upgrading,
    BatchState.VERIFYING: _verifying,
    BatchState.READY: _ready,
}


# --- batch readiness and pod labels (shared by the rolling styles) --------------------------------


def batch_step(
    obs: BatchReleaseObserved,
    batch: int,
    *,
    desired: int,
    updated: int,
    updated_ready: int,
    replicas: int | None = None,
    labelled: int | None = None,
) -> Step:
    """Kruise's IsBatchReady plus the pod batch labels: done when enough updated pods are ready
    (within failureThreshold) and, with a rolloutID, enough of them carry it. `replicas` defaults to
    the workload's spec.replicas (a DaemonSet passes the nodes it runs on); `labelled` (default
    `desired`) is how many of `obs.pods` the batches label (a rollback in batches leaves out the pods
    that needed no update)."""
    plan_ = obs.release.spec.release_plan
    replicas = spec_replicas(obs.workload or {}) if replicas is None else replicas
    labels = pod_label_patches(obs.pods, plan_.batches, replicas, batch, plan_.rollout_id)
    ready = batch_ready(
        desired=desired,
        updated=updated,
        updated_ready=updated_ready,
        failure_threshold=plan_.failure_threshold,
    )
    wanted = desired if labelled is None else labelled
    return Step(ready and _labels_satisfied(obs.pods, plan_.rollout_id, wanted), labels)


def pod_label_patches(
    pods: Iterable[Obj], batches: list[ReleaseBatch], replicas: int, current: int, rollout_id: str
) -> tuple[Patch, ...]:
    """Label updated pods with the rollout id and the 1-based batch they belong to, newest batch first.

    Each batch owns its increment of pods over the previous batch; pods already labelled for this
    rollout id use up their batch's share, and the newest unlabelled pods are given to the newest batch.
    """
    if not rollout_id or current >= len(batches):
        return ()
    live = sorted((p for p in pods if not _deleting(p.get("metadata", {}))), key=_created)
    wanted = _increments(batches, replicas, current)
    unlabelled: list[Obj] = []
    for pod in live:
        pod_labels = labels_of(pod)
        batch_id = pod_labels.get(keys.ROLLOUT_BATCH_ID_LABEL, "")
        if pod_labels.get(keys.ROLLOUT_ID_LABEL) != rollout_id:
            unlabelled.append(pod)
        elif batch_id.isdigit() and 0 < int(batch_id) <= len(wanted):
            wanted[int(batch_id) - 1] -= 1
    patches: list[Patch] = []
    for index in range(len(wanted) - 1, -1, -1):
        for _ in range(max(wanted[index], 0)):
            if not unlabelled:
                return tuple(patches)
            patches.append(_batch_label(unlabelled.pop(), rollout_id, index + 1))
    return tuple(patches)


def _batch_label(pod: Obj, rollout_id: str, batch_id: int) -> Patch:
    labels = {keys.ROLLOUT_ID_LABEL: rollout_id, keys.ROLLOUT_BATCH_ID_LABEL: str(batch_id)}
    return Patch("Pod", str(pod["metadata"]["name"]), {"metadata": {"labels": labels}})


def _increments(batches: list[ReleaseBatch], replicas: int, current: int) -> list[int]:
    planned = [scale(b.canary_replicas, replicas) if i <= current else 0 for i, b in enumerate(batches)]
    return [planned[0], *(planned[i] - planned[i - 1] if i <= current else 0 for i in range(1, len(planned)))]


def _labels_satisfied(pods: tuple[Obj, ...], rollout_id: str, planned: int) -> bool:
    if not rollout_id or not pods:
        return True
    live = [p for p in pods if not _deleting(p.get("metadata", {}))]
    return sum(labels_of(p).get(keys.ROLLOUT_ID_LABEL) == rollout_id for p in live) >= planned


# --- small readers of plain Kubernetes objects ----------------------------------------------------


def spec_replicas(obj: Obj) -> int:
    replicas = obj.get("spec", {}).get("replicas")
    return 1 if replicas is None else int(replicas)  # the API server defaults replicas to 1


def status_int(obj: Obj, field: str) -> int:
    return int(obj.get("status", {}).get(field) or 0)


def generation_observed(obj: Obj) -> bool:
    return status_int(obj, "observedGeneration") >= int(obj.get("metadata", {}).get("generation") or 0)


def labels_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def controller_uid(obj: Obj) -> str:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return next((str(ref.get("uid", "")) for ref in refs if ref.get("controller")), "")


def _deleting(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get("deletionTimestamp"))


def _created(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


def _partition(br: BatchRelease) -> int | None:
    return br.spec.release_plan.batch_partition
