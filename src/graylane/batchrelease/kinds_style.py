"""Partition style for every kind but Deployment (reference §2.6, §2.7): the workload's own partition.

What this module does: the pure `Control` for a CloneSet, a StatefulSet-like workload (native or Advanced
StatefulSet), an Advanced DaemonSet and a native DaemonSet. Each batch keeps `replicas - batch` pods on
the old revision (the partition counts OLD pods, the opposite of the Deployment's):

- Initialize claims it (control-info) and holds every pod back: CloneSet `partition: "100%"`,
  StatefulSet-like `rollingUpdate.partition: 32767`, Advanced DaemonSet `partition: desiredNumberScheduled`,
  native DaemonSet `updateStrategy.type: OnDelete` (its partition lives in an annotation that graylane's
  native-DaemonSet controller acts on, batchrelease/daemonset_pods.py);
- each batch lowers the partition to `replicas - ceil(batch x replicas)` (never raises it: pods are only
  ever added; a native DaemonSet's annotation is rewritten whenever it differs, as Kruise master does).
  A CloneSet batch given as a percentage is written as a percentage (Kruise's rounding: `floor(old x
  100 / replicas)%`, "1%" where that would keep no old pod for a batch below 100%), and the batch is
  judged by what that percentage makes the CloneSet keep, so the two never disagree;
- a batch is ready when enough pods are on the update revision and ready (within failureThreshold),
  counted from the workload's status where it reports them, else from its pods (a native StatefulSet and
  the DaemonSets have no updatedReadyReplicas, as Kruise counts them too);
- Finalize, once batchPartition is unset (or no release holds the workload), hands it back: partition
  removed, a native DaemonSet's original strategy restored and every key of ours gone; with a partition
  and a release still holding it (a continuous release) it only drops control-info. Done only once the
  workload is seen so and its controller has observed it.

Rollback in batches (Kruise's `rollouts.kruise.io/rollback-in-batch`): pods already on the target
revision are labelled `rollouts.kruise.io/no-need-update=<rollout id>` and left out of the batches
(`no_need_update`), as Kruise's partition-style controls do.

What it must not do: I/O, or delete pods (daemonset_pods.py's controller does).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graylane.api import keys
from graylane.api.workloads import Family, WorkloadKind, pod_on_revision
from graylane.batchrelease.common import deleting, drop_control_info, name_of, scaled_or_zero, version_of
from graylane.batchrelease.partition_style import control_info, controlled_by
from graylane.batchrelease.planner import (
    BatchReleaseObserved,
    Patch,
    Step,
    WorkloadInfo,
    annotations_of,
    batch_step,
    generation_observed,
    labels_of,
    pod_label_patches,
    rollback_in_batches,
    status_int,
)
from graylane.observe.workload_objects import NATIVE_DAEMONSET_ANNOTATIONS, partition_of, release_annotations
from graylane.planner.partitions import cloneset_partition, desired_stable, new_pods

__all__ = ["HOLD_ALL", "KindControl", "pod_ready", "pods_on"]

HOLD_ALL = 32767  # Kruise's math.MaxInt16: every pod of a StatefulSet-like workload held back
Obj = Any


def pods_on(pods: tuple[Obj, ...], revision: str) -> tuple[Obj, ...]:
    """Live pods on `revision` (Kruise's IsConsistentWithRevision: controller-revision-hash ends with it,
    or pod-template-hash is its suffix)."""
    return tuple(p for p in pods if _on_revision(p, revision) and not deleting(p))


def _on_revision(pod: Obj, revision: str) -> bool:
    return pod_on_revision((pod.get("metadata") or {}).get("labels") or {}, revision)


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclasses.dataclass(frozen=True)
class KindControl:
    """The partition-style `Control` for one workload kind (not a Deployment)."""

    kind: WorkloadKind

    @property
    def family(self) -> Family:
        return self.kind.family

    # -- what the workload says -------------------------------------------------------------------

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None:
        obj = obs.workload
        if obj is None:
            return None
        replicas, updated = self._replicas(obj), self._updated(obj)
        return WorkloadInfo(
            replicas=replicas,
            observed=generation_observed(obj),
            promoted=self._status_total(obj) == updated,
            updated=updated,
            updated_ready=self._updated_ready(obs),
            update_revision=obs.update_revision,
            stable_revision=obs.stable_revision,
        )

    def _replicas(self, obj: Obj) -> int:
        if self.family in (Family.NATIVE_DAEMONSET, Family.ADVANCED_DAEMONSET):
            return status_int(obj, "desiredNumberScheduled")
        replicas = (obj.get("spec") or {}).get("replicas")
        return 1 if replicas is None else int(replicas)

    def _status_total(self, obj: Obj) -> int:
        daemon = self.family in (Family.NATIVE_DAEMONSET, Family.ADVANCED_DAEMONSET)
        return status_int(obj, "desiredNumberScheduled" if daemon else "replicas")

    def _updated(self, obj: Obj) -> int:
        daemon = self.family in (Family.NATIVE_DAEMONSET, Family.ADVANCED_DAEMONSET)
        return status_int(obj, "updatedNumberScheduled" if daemon else "updatedReplicas")

    def _updated_ready(self, obs: BatchReleaseObserved) -> int:
        """status.updatedReadyReplicas where the kind reports it, else the ready pods on the revision."""
        reported = status_int(obs.workload or {}, "updatedReadyReplicas")
        if reported > 0:
            return reported
        return sum(1 for p in pods_on(obs.pods, obs.update_revision) if pod_ready(p))

    # -- the four steps ---------------------------------------------------------------------------

    def initialize(self, obs: BatchReleaseObserved) -> Step:
        obj = obs.workload
        if obj is None:
            return Step(False)
        if controlled_by(obj, obs.release):
            return self._mark_no_need_update(obs)
        body = {
            "metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(obs.release)}},
            "spec": {"updateStrategy": self._hold_all(obj)},
        }
        # Guarded: claiming it from a stale view could re-take a workload already handed back. Done once
        # seen claimed: the next status is stored before this patch goes out.
        return Step(False, (Patch(self.kind.kind, name_of(obj), body, version_of(obj)),))

    def _mark_no_need_update(self, obs: BatchReleaseObserved) -> Step:
        """Rollback in batches: label the pods already on the target revision (Kruise's
        markNoNeedUpdatePodsIfNeeds); done once every one of them carries the label, counting them."""
        rollout_id = obs.release.spec.release_plan.rollout_id
        if not rollback_in_batches(obs.release):
            return Step(True)
        on_target = pods_on(obs.pods, obs.update_revision)
        if not rollout_id:
            return Step(True, no_need_update=len(on_target))
        missing = [p for p in on_target if labels_of(p).get(keys.NO_NEED_UPDATE_POD_LABEL) != rollout_id]
        body = {"metadata": {"labels": {keys.NO_NEED_UPDATE_POD_LABEL: rollout_id}}}
        patches = tuple(Patch("Pod", name_of(p), body) for p in missing)  # fixed values
        return Step(not missing, patches, no_need_update=len(on_target))

    def _hold_all(self, obj: Obj) -> dict[str, Any]:
        if self.family is Family.CLONESET:
            return {"paused": False, "partition": "100%"}
        if self.family is Family.NATIVE_DAEMONSET:
            return {"type": "OnDelete"}
        hold = self._replicas(obj) if self.family is Family.ADVANCED_DAEMONSET else HOLD_ALL
        rolling: dict[str, Any] = {"partition": hold}
        if self.kind.openkruise:  # native apps/v1 StatefulSets have no rollingUpdate.paused
            rolling["paused"] = False
        return {"rollingUpdate": rolling}

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step:
        obj = obs.workload
        if obj is None:
            return Step(False)
        replicas = self._replicas(obj)
        if replicas == 0 or not controlled_by(obj, obs.release):
            return Step(True)  # nothing to release, or someone took the workload away: let it be
        plan = obs.release.spec.release_plan
        labelled = replicas - self._no_need_update(obs)
        labels = pod_label_patches(self._updated_pods(obs), plan.batches, labelled, batch, plan.rollout_id)
        patch = self._partition_patch(obs, obj, batch)
        return Step(True, (patch, *labels) if patch is not None else labels)

    def _partition_patch(self, obs: BatchReleaseObserved, obj: Obj, batch: int) -> Patch | None:
        replicas, wanted = self._replicas(obj), self._batch(obs, batch)
        stable = desired_stable(replicas, wanted, self._no_need_update(obs))
        if self.family is Family.NATIVE_DAEMONSET:
            annotations = annotations_of(obj)
            values = {keys.DAEMONSET_PARTITION_ANNOTATION: str(stable)}
            values[keys.DAEMONSET_BATCH_REVISION_ANNOTATION] = obs.update_revision
            if all(annotations.get(k) == v for k, v in values.items()):
                return None
            return Patch(self.kind.kind, name_of(obj), {"metadata": {"annotations": values}})  # fixed values
        value: int | str = stable
        if self.family is Family.CLONESET:
            value = cloneset_partition(stable, replicas, wanted)
        elif self._ordered(obj):
            # Ordinals: the pods that need no update are the lowest ones, kept below the partition too.
            value = stable + self._no_need_update(obs)
        current = partition_of(self.kind, obj)
        if current is not None and scaled_or_zero(current, replicas) <= scaled_or_zero(value, replicas):
            return None  # never raise the partition: pods are only ever added
        strategy: dict[str, Any] = {"partition": value}
        if self.family is not Family.CLONESET:
            strategy = {"rollingUpdate": strategy}
        # Guarded: the partition only falls, judged from the one this version holds.
        return Patch(self.kind.kind, name_of(obj), {"spec": {"updateStrategy": strategy}}, version_of(obj))

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
        obj = obs.workload
        if obj is None:
            return Step(False)
        replicas = self._replicas(obj)
        if replicas == 0:
            return Step(True)
        desired, no_need = self._desired_updated(obs, obj, batch), self._no_need_update(obs)
        return batch_step(
            dataclasses.replace(obs, pods=self._updated_pods(obs)),
            batch,
            desired=desired,
            updated=self._updated(obj),
            updated_ready=self._updated_ready(obs),
            replicas=replicas - no_need,
            labelled=max(desired - no_need, 0),
        )

    def _desired_updated(self, obs: BatchReleaseObserved, obj: Obj, batch: int) -> int:
        """Pods on the new revision once this batch is done: what the partition written keeps back."""
        wanted = self._batch(obs, batch)
        return new_pods(self.kind.kind, self._replicas(obj), wanted, self._no_need_update(obs))

    def finalize(self, obs: BatchReleaseObserved) -> Step:
        obj = obs.workload
        if obj is None:
            return Step(True)
        body = self._release_body(obj) if obs.hand_back else drop_control_info(obj)
        if body is not None:
            return Step(False, (Patch(self.kind.kind, name_of(obj), body),))  # fixed values: idempotent
        return Step(generation_observed(obj))

    def _release_body(self, obj: Obj) -> dict[str, Any] | None:
        """Back to its own controller: only what still differs (None: handed back)."""
        annotations = annotations_of(obj)
        ours = [keys.BATCH_RELEASE_CONTROL_ANNOTATION, *release_annotations(self.kind)]
        body: dict[str, Any] = {}
        gone = {key: None for key in ours if key in annotations}
        if gone:
            body["metadata"] = {"annotations": gone}
        strategy = self._released_strategy(obj)
        if strategy is not None:
            body["spec"] = {"updateStrategy": strategy}
        return body or None

    def _released_strategy(self, obj: Obj) -> dict[str, Any] | None:
        """The update strategy to write back, or None when it holds nothing back any more."""
        current = (obj.get("spec") or {}).get("updateStrategy") or {}
        if self.family is Family.NATIVE_DAEMONSET:
            annotations = annotations_of(obj)
            original = annotations.get(keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION) or "RollingUpdate"
            ours = any(key in annotations for key in NATIVE_DAEMONSET_ANNOTATIONS)
            held = ours and current.get("type") == "OnDelete" and original != "OnDelete"
            return {"type": original} if held else None
        rolling = current if self.family is Family.CLONESET else (current.get("rollingUpdate") or {})
        partition = partition_of(self.kind, obj)
        # A native StatefulSet's API server defaults a removed partition to 0.
        released = partition is None or (not self.kind.openkruise and scaled_or_zero(partition, 1) == 0)
        if released and not rolling.get("paused"):
            return None
        if self.family is Family.CLONESET:
            return {"partition": None, "paused": False}
        written: dict[str, Any] = {"partition": None}
        if self.kind.openkruise:
            written["paused"] = False
        return {"rollingUpdate": written}

    # -- helpers ------------------------------------------------------------------------------------

    def _ordered(self, obj: Obj) -> bool:
        """A StatefulSet-like workload updates by ordinal, unless (Advanced) `unorderedUpdate` is set."""
        if self.family is not Family.STATEFULSET_LIKE:
            return False
        rolling = ((obj.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        return rolling.get("unorderedUpdate") is None  # Kruise: set at all (even {}) means unordered

    def _batch(self, obs: BatchReleaseObserved, batch: int) -> int | str:
        batches = obs.release.spec.release_plan.batches
        return batches[min(batch, len(batches) - 1)].canary_replicas if batches else 0

    def _no_need_update(self, obs: BatchReleaseObserved) -> int:
        return obs.release.status.canary_status.no_need_update_replicas or 0

    def _updated_pods(self, obs: BatchReleaseObserved) -> tuple[Obj, ...]:
        """Pods on the update revision that a rollback in batches did not mark as needing no update."""
        rollout_id = obs.release.spec.release_plan.rollout_id
        return tuple(
            p
            for p in pods_on(obs.pods, obs.update_revision)
            if not rollout_id or labels_of(p).get(keys.NO_NEED_UPDATE_POD_LABEL) != rollout_id
        )
