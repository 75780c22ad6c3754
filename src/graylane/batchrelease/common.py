"""Pieces every BatchRelease `Control` shares: the batch check, intstr scaling, the common patches.

What this module does: the parts of the styles' `Control`s (partition_style, bluegreen_style,
bluegreen_cloneset, canary_style, kinds_style) that are the same decision for every workload: a batch
check for a workload that counts its pods in `status.updatedReplicas`, the control-info removal of a
continuous release, intstr scaling that treats a malformed value as 0, a Deployment's
maxUnavailable as its controller resolves it, and the object metadata readers.

What it must not do: I/O, or hold anything one style does differently (each style keeps its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graylane.api import keys
from graylane.api.common import IntOrString, scaled_int_or_percent
from graylane.batchrelease.planner import (
    BatchReleaseObserved,
    Step,
    WorkloadInfo,
    annotations_of,
    batch_step,
    generation_observed,
    labels_of,
    spec_replicas,
    status_int,
)
from graylane.planner.weights import IntOrStr

__all__ = [
    "deleting",
    "drop_control_info",
    "max_unavailable",
    "name_of",
    "replicas_check",
    "replicas_info",
    "scaled_or_zero",
    "version_of",
]

Obj = Mapping[str, Any]


def replicas_info(
    obs: BatchReleaseObserved,
    *,
    updated_ready: Callable[[BatchReleaseObserved], int],
    stable_label: bool,
) -> WorkloadInfo | None:
    """`info()` of a style whose workload counts its pods in `spec.replicas` and `status.replicas` /
    `status.updatedReplicas`; with `stable_label`, the stable revision the webhook recorded in the
    workload's label comes first (a Deployment's; without it, the observed stable revision)."""
    workload = obs.workload
    if workload is None:
        return None
    labelled = labels_of(workload).get(keys.STABLE_REVISION_LABEL) if stable_label else None
    return WorkloadInfo(
        replicas=spec_replicas(workload),
        observed=generation_observed(workload),
        promoted=status_int(workload, "replicas") == status_int(workload, "updatedReplicas"),
        updated=status_int(workload, "updatedReplicas"),
        updated_ready=updated_ready(obs),
        update_revision=obs.update_revision,
        stable_revision=labelled or obs.stable_revision,
    )


def replicas_check(
    obs: BatchReleaseObserved,
    batch: int,
    *,
    to_replicas: Callable[[IntOrStr | None, int], int],
    updated_ready: Callable[[BatchReleaseObserved], int],
) -> Step:
    """`check()` of a style whose workload counts its updated pods in `status.updatedReplicas`.

    Not done while the workload is missing (it may come back); done at 0 replicas (nothing to wait
    for). `to_replicas` turns the batch's canaryReplicas into pods, `updated_ready` counts the ready
    new pods the way the style can see them.
    """
    workload = obs.workload
    if workload is None:
        return Step(False)
    replicas = spec_replicas(workload)
    if replicas == 0:
        return Step(True)
    desired = to_replicas(obs.release.spec.release_plan.batches[batch].canary_replicas, replicas)
    return batch_step(
        obs,
        batch,
        desired=desired,
        updated=status_int(workload, "updatedReplicas"),
        updated_ready=updated_ready(obs),
    )


def drop_control_info(obj: Obj) -> dict[str, Any] | None:
    """A continuous release's finalize body: only control-info goes; None when it is gone already."""
    if not annotations_of(obj).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION):
        return None
    return {"metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: None}}}


def scaled_or_zero(value: IntOrString, total: int, *, round_up: bool = True) -> int:
    """intstr scaling; a malformed value counts as 0 (validation rejects it before a release starts)."""
    try:
        return scaled_int_or_percent(value, total, round_up=round_up)
    except ValueError:
        return 0


def max_unavailable(dep: Obj) -> int:
    """The Deployment controller's resolveFenceposts: surge rounds up, unavailable down, never both 0."""
    spec = dep.get("spec") or {}
    strategy = spec.get("strategy") or {}
    replicas = spec_replicas(dep)
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_or_zero(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_or_zero(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    return min(1 if surge == 0 and unavailable == 0 else unavailable, replicas)


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def version_of(obj: Obj) -> str:
    """metadata.resourceVersion, the guard of a write decided from this view of the object."""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
