"""Partition style for a Deployment (reference §2.7): the Deployment itself is released in batches.

What this module does: the pure `Control` for a Deployment released in place. Initialize hands it to the
Advanced Deployment controller (label `controlled-by-advanced-deployment-controller=true`, the
deployment-strategy annotation holding the original rollingUpdate and `partition: 0`, control-info,
`spec.paused=true`, `strategy: {type: Recreate}` so the native controller stands still); each batch writes
the batch's `canaryReplicas` as `partition`, the number of NEW pods wanted (stored as written, "20%" or
1, as Kruise does; the advanced controller scales it). Finalize, once batchPartition is unset (or no
release holds the Deployment any more), gives it back to the native RollingUpdate (saved rollingUpdate,
not paused) and removes every key this style added; the native controller then adopts the new
ReplicaSet and completes the release. With a partition and a release still holding the Deployment (a
continuous release) it only drops control-info, as Kruise does. Finalize is done only when the
Deployment is *seen* that way and its controller has observed it: a missing annotation alone proves
nothing (a pass that dropped only control-info would otherwise read as a finished hand-back).

What it must not do: I/O, or scale ReplicaSets (that is advanced_deployment's job).
"""

from __future__ import annotations

import json
from typing import Any

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.enums import RollingStyle
from graylane.batchrelease.advanced_deployment_planner import DeploymentStrategy, under_control
from graylane.batchrelease.common import (
    drop_control_info,
    name_of,
    replicas_check,
    replicas_info,
    scaled_or_zero,
    version_of,
)
from graylane.batchrelease.planner import (
    BatchReleaseObserved,
    Patch,
    Step,
    WorkloadInfo,
    annotations_of,
    generation_observed,
    labels_of,
    pod_label_patches,
    spec_replicas,
)
from graylane.planner.weights import partition_style_replicas

__all__ = ["PartitionStyle", "control_info", "controlled_by", "owner_reference"]

DEPLOYMENT = "Deployment"
_SCALE_BASE = 10_000_000  # Kruise compares two partitions by scaling both against a huge total


def owner_reference(br: BatchRelease) -> dict[str, Any]:
    """The BatchRelease as a controller ownerReference (metav1.NewControllerRef), in Go field order."""
    meta = br.metadata
    return {
        "apiVersion": br.api_version,
        "kind": br.kind,
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def control_info(br: BatchRelease) -> str:
    """The control-info annotation: the ownerReference as compact JSON, as Go marshals it."""
    return json.dumps(owner_reference(br), separators=(",", ":"))


def controlled_by(obj: dict[str, Any] | Any, br: BatchRelease) -> bool:
    """Whether the object's control-info names this BatchRelease (by uid, as Kruise checks)."""
    text = annotations_of(obj).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION, "")
    try:
        ref = json.loads(text) if text else {}
    except ValueError:
        return False
    return isinstance(ref, dict) and bool(ref.get("uid")) and ref.get("uid") == br.metadata.get("uid")


def _strategy(dep: Any) -> DeploymentStrategy:
    parsed = DeploymentStrategy.parse(annotations_of(dep).get(keys.DEPLOYMENT_STRATEGY_ANNOTATION))
    return parsed or DeploymentStrategy()


def _extra_ready(obs: BatchReleaseObserved) -> int:
    """New pods ready, from the extra status the Advanced Deployment controller writes."""
    dep = obs.workload or {}
    try:
        extra = json.loads(annotations_of(dep).get(keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION) or "{}")
    except ValueError:
        return 0
    return int(extra.get("updatedReadyReplicas") or 0) if isinstance(extra, dict) else 0


class PartitionStyle:
    """The partition-style `Control` for an apps/v1 Deployment."""

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None:
        return replicas_info(obs, updated_ready=_extra_ready, stable_label=True)

    def initialize(self, obs: BatchReleaseObserved) -> Step:
        dep = obs.workload
        if dep is None:
            return Step(False)
        if under_control(dep):
            return Step(True)
        spec_ru = dep.get("spec", {}).get("strategy", {}).get("rollingUpdate")
        rolling_update = spec_ru or _strategy(dep).rolling_update
        strategy = DeploymentStrategy(RollingStyle.PARTITION, rolling_update, False, 0).with_defaults()
        body = {
            "metadata": {
                "labels": {keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL: "true"},
                "annotations": {
                    keys.DEPLOYMENT_STRATEGY_ANNOTATION: strategy.dump(),
                    keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(obs.release),
                },
            },
            # Recreate + paused is what keeps the native Deployment controller from rolling pods.
            "spec": {"paused": True, "strategy": {"type": "Recreate", "rollingUpdate": None}},
        }
        # Guarded: taking control from a stale view could re-take a Deployment already handed back.
        # Done once seen under control: the next status is stored before this patch goes out.
        return Step(False, (Patch(DEPLOYMENT, name_of(dep), body, version_of(dep)),))

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step:
        dep = obs.workload
        if dep is None:
            return Step(False)
        if spec_replicas(dep) == 0 or not under_control(dep):
            return Step(True)  # nothing to release, or someone took the Deployment away: let it be
        plan = obs.release.spec.release_plan
        labels = pod_label_patches(obs.pods, plan.batches, spec_replicas(dep), batch, plan.rollout_id)
        strategy, desired = _strategy(dep), plan.batches[batch].canary_replicas
        if _scaled(strategy.partition) >= _scaled(desired):
            return Step(True, labels)  # never lower the partition: pods are only ever added
        value = DeploymentStrategy(
            strategy.rolling_style, strategy.rolling_update, strategy.paused, desired
        ).dump()
        body = {"metadata": {"annotations": {keys.DEPLOYMENT_STRATEGY_ANNOTATION: value}}}
        # Guarded: the partition only grows, judged from the strategy this version holds.
        return Step(True, (Patch(DEPLOYMENT, name_of(dep), body, version_of(dep)), *labels))

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
        return replicas_check(obs, batch, to_replicas=partition_style_replicas, updated_ready=_extra_ready)

    def finalize(self, obs: BatchReleaseObserved) -> Step:
        dep = obs.workload
        if dep is None:
            return Step(True)
        body = _release_body(dep) if obs.hand_back else drop_control_info(dep)
        if body is not None:
            return Step(False, (Patch(DEPLOYMENT, name_of(dep), body),))
        return Step(generation_observed(dep))


def _release_body(dep: Any) -> dict[str, Any] | None:
    """Back to the native controller: resumed, RollingUpdate with the saved settings, our keys gone.

    Only what still differs (None: handed back); fixed values, so repeating it changes nothing.
    """
    annotations, labels = annotations_of(dep), labels_of(dep)
    ours = (
        keys.DEPLOYMENT_STRATEGY_ANNOTATION in annotations or keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL in labels
    )
    spec: dict[str, Any] = {}
    if dep.get("spec", {}).get("paused"):
        spec["paused"] = False
    if ours and dep.get("spec", {}).get("strategy", {}).get("type") == "Recreate":
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": _strategy(dep).rolling_update}
    gone = (
        keys.BATCH_RELEASE_CONTROL_ANNOTATION,
        keys.DEPLOYMENT_STRATEGY_ANNOTATION,
        keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION,
    )
    meta: dict[str, Any] = {}
    if any(key in annotations for key in gone):
        meta["annotations"] = {key: None for key in gone if key in annotations}
    labelled = (keys.STABLE_REVISION_LABEL, keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL)
    if any(key in labels for key in labelled):
        meta["labels"] = {key: None for key in labelled if key in labels}
    body: dict[str, Any] = {"metadata": meta} if meta else {}
    if spec:
        body["spec"] = spec
    return body or None


def _scaled(value: int | str) -> int:
    return scaled_or_zero(value, _SCALE_BASE)
