"""Rollback in batches (Kruise's `rollouts.kruise.io/rollback-in-batch: "true"` on the Rollout).

By default a workload put back on its stable revision mid-release cancels the release and its own
controller rolls every pod back at once (planner/progressing.py, fast rollback). With this annotation, for
a CloneSet or a StatefulSet (native, Advanced, or labelled `workload-type: statefulset`) whose Rollout
routes no traffic, the rollback is released like a new version instead: the step machine restarts at
step 1 for the old revision, and the BatchRelease (given the annotation) marks the pods already on it
`rollouts.kruise.io/no-need-update` and takes the batches over the others only (batchrelease/
kinds_style.py). Kruise's `isRollingBackInBatches` / `handleRollbackInBatches`.

Pure: no I/O.
"""

from __future__ import annotations

from graylane.api import keys
from graylane.api.enums import StepState
from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.context import Pass, next_step_index
from graylane.planner.observed import Workload

__all__ = ["batch_release_annotations", "in_batches", "restart_in_batches"]


def in_batches(rollout: Rollout, workload: Workload) -> bool:
    """Kruise's IsRollbackInBatchPolicy: the annotation, no traffic routing, a CloneSet or StatefulSet."""
    if rollout.spec.strategy.traffic_routings():
        return False
    kind = rollout.spec.workload_ref.kind
    typed = str(workload.labels.get(keys.WORKLOAD_TYPE_LABEL) or "").lower() == "statefulset"
    annotations = rollout.metadata.get("annotations") or {}
    return (kind in ("StatefulSet", "CloneSet") or typed) and annotations.get(
        keys.ROLLBACK_IN_BATCH_ANNOTATION
    ) == "true"


def restart_in_batches(p: Pass) -> None:
    """The rollback is the release now: back to step 1 for the revision the workload is on."""
    p.sub.current_step_index = 1
    p.sub.next_step_index = next_step_index(p.rollout, 1)
    p.sub.canary_revision = p.workload.canary_revision
    p.sub.current_step_state = StepState.BEFORE_STEP_UPGRADE
    p.sub.rollout_hash = rollout_hash(p.rollout.spec.strategy)
    p.touch()


def batch_release_annotations(p: Pass) -> dict[str, str]:
    """What the BatchRelease is told: rolling back in batches (Kruise copies the Rollout's value)."""
    if not (p.workload.is_in_rollback and in_batches(p.rollout, p.workload)):
        return {}
    value = (p.rollout.metadata.get("annotations") or {}).get(keys.ROLLBACK_IN_BATCH_ANNOTATION, "")
    return {keys.ROLLBACK_IN_BATCH_ANNOTATION: str(value)}
