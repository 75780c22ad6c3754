"""Blue-green style for an OpenKruise CloneSet (reference §2.7): new pods surge beside the old ones.

What this module does: the pure `Control` of a CloneSet blue-green release, Kruise's way. Initialize
disables an HPA on the CloneSet, saves `maxSurge`, `maxUnavailable` and `minReadySeconds` (CloneSet
defaults 0% / 20%) in `rollouts.kruise.io/original-deployment-strategy`, and sets
`updateStrategy: {paused: false, maxSurge: 1, maxUnavailable: 0}` and `minReadySeconds:
MaxReadySeconds` (the `partition: 100%` the webhook set keeps pods from moving meanwhile). Each batch
drops the partition and raises `maxSurge` to the batch's replicas: new pods come up beside the old
ones, which are never available-budgeted away. Finalize, once handed back, restores the saved
settings, waits until every ready pod is an updated ready pod, then re-enables the HPA.

A CloneSet scaled mid-release: OpenKruise's controller never creates an old-revision pod in a surge
and, with no pod available, deletes no Ready one, so the old pods stay as they were; it surges new
pods only up to `pods_wanted`. So a batch is done once the CloneSet wants no more pods than it has
(scaled from 4 + 4 to 6 it wants the 8 it has: "100% of 6" would never come), and after a scale-in
the new pods beyond the step's share are deleted, down to what the CloneSet would not surge back.

What it must not do: I/O, or move pods itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

from graylane.api import keys
from graylane.api.common import IntOrString
from graylane.batchrelease.bluegreen_style import (
    MAX_READY_SECONDS,
    OriginalSetting,
    hpa_disabled,
    hpa_for,
    hpa_patch,
    scaled_surge,
    surge_upgrade,
)
from graylane.batchrelease.common import (
    deleting,
    name_of,
    replicas_check,
    replicas_info,
    scaled_or_zero,
    version_of,
)
from graylane.batchrelease.kinds_style import pod_ready, pods_on
from graylane.batchrelease.partition_style import control_info, controlled_by
from graylane.batchrelease.planner import (
    BatchReleaseObserved,
    Delete,
    Patch,
    Step,
    WorkloadInfo,
    annotations_of,
    generation_observed,
    spec_replicas,
    status_int,
)
from graylane.planner.weights import scale

__all__ = ["CLONESET_API_VERSION", "BlueGreenCloneSet", "cloneset_original", "pods_wanted"]

CLONESET: Final = "CloneSet"
POD: Final = "Pod"
CLONESET_API_VERSION: Final = "apps.kruise.io/v1alpha1"
_INITIAL_SURGE: Final = 1


def cloneset_original(saved: OriginalSetting, cloneset: Mapping[str, Any]) -> OriginalSetting:
    """Kruise's InitOriginalSetting for a CloneSet: unsaved values from its updateStrategy (defaults
    maxSurge 0%, maxUnavailable 20%); a CloneSet has no progressDeadlineSeconds."""
    spec = cloneset.get("spec") or {}
    strategy = spec.get("updateStrategy") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    return OriginalSetting(
        saved.max_unavailable if saved.max_unavailable is not None else strategy.get("maxUnavailable", "20%"),
        saved.max_surge if saved.max_surge is not None else strategy.get("maxSurge", "0%"),
        saved.min_ready_seconds or (0 if min_ready == MAX_READY_SECONDS else min_ready),
        saved.progress_deadline_seconds,
    )


class BlueGreenCloneSet:
    """The blue-green `Control` for an apps.kruise.io/v1alpha1 CloneSet."""

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None:
        return replicas_info(obs, updated_ready=_updated_ready, stable_label=False)

    def initialize(self, obs: BatchReleaseObserved) -> Step:
        cs = obs.workload
        if cs is None:
            return Step(False)
        if controlled_by(cs, obs.release):
            return Step(True)
        hpa = hpa_for(obs.hpas, CLONESET, name_of(cs), CLONESET_API_VERSION)
        actions = [] if hpa is None else [hpa_patch(hpa, disable=True)]
        saved = OriginalSetting.parse(annotations_of(cs).get(keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION))
        body = {
            "metadata": {
                "annotations": {
                    keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: cloneset_original(saved, cs).dump(),
                    keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(obs.release),
                }
            },
            "spec": {
                "updateStrategy": {"paused": False, "maxSurge": _INITIAL_SURGE, "maxUnavailable": 0},
                "minReadySeconds": MAX_READY_SECONDS,
            },
        }
        actions.append(Patch(CLONESET, name_of(cs), body, version_of(cs)))
        return Step(False, tuple(actions))

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step:
        surplus = _surplus_new_pods(obs, batch)
        if surplus:
            # A scale-in left more new pods than the step asks: the CloneSet deletes no Ready pod.
            return Step(False, surplus)
        return surge_upgrade(
            obs,
            batch,
            kind=CLONESET,
            ready=_ready_for_blue_green,
            current=_current_surge,
            body=lambda surge: {"spec": {"updateStrategy": {"partition": None, "maxSurge": surge}}},
        )

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
        # `scale`, not partition_style_replicas: the CloneSet surges the batch's pods, uncapped; but
        # never more than it will surge beside the old pods (a scale-out by less than them adds none).
        def desired(step: IntOrString | None, replicas: int) -> int:
            return min(scale(step, replicas), _surge_limit(obs, batch))

        return replicas_check(obs, batch, to_replicas=desired, updated_ready=_updated_ready)

    def finalize(self, obs: BatchReleaseObserved) -> Step:
        cs = obs.workload
        if cs is None or not obs.hand_back:
            return Step(True)
        saved = annotations_of(cs).get(keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION)
        if saved is not None:
            return Step(False, (_restore(cs, cloneset_original(OriginalSetting.parse(saved), {})),))
        ready, updated_ready = status_int(cs, "readyReplicas"), status_int(cs, "updatedReadyReplicas")
        if not generation_observed(cs) or ready != updated_ready:
            return Step(False)
        hpa = hpa_for(obs.hpas, CLONESET, name_of(cs), CLONESET_API_VERSION)
        if hpa is not None and hpa_disabled(hpa):
            return Step(False, (hpa_patch(hpa, disable=False),))
        return Step(True)


def pods_wanted(replicas: int, surge: int, partition: int, old: int, new: int) -> int:
    """How many pods OpenKruise's CloneSet controller wants (calculateDiffsWithExpectation, read in
    openkruise/kruise pkg/controller/cloneset/sync/cloneset_sync_utils.go): `replicas` plus a surge used
    only while old pods beyond the partition remain AND new pods are missing, at most the smallest of
    maxSurge, the one and the other. It creates pods up to that; beyond it, with every pod unavailable
    (minReadySeconds at MaxReadySeconds), it deletes none that is Ready."""
    beyond, missing = old - partition, replicas - partition - new
    if surge <= 0 or beyond <= 0 or missing <= 0:
        return replicas
    return replicas + min(surge, beyond, missing)


def _surge_limit(obs: BatchReleaseObserved, batch: int) -> int:
    """The new pods the CloneSet will reach in this state: its new pods once it wants no more pods
    than it has; no limit while it is still reconciling or creating (its own status or pods behind),
    or while this batch's settings are not on it yet (a cached CloneSet with Initialize's partition
    wants no pods at all: that is not a finished batch)."""
    counts = _counts(obs)
    if counts is None or not _batch_applied(obs, batch):
        return sys.maxsize
    replicas, surge, partition, old, new = counts
    if old + new < pods_wanted(replicas, surge, partition, old, new):
        return sys.maxsize
    return new


def _batch_applied(obs: BatchReleaseObserved, batch: int) -> bool:
    """The partition dropped and maxSurge at least the batch's replicas (what `upgrade` writes)."""
    strategy = ((obs.workload or {}).get("spec") or {}).get("updateStrategy") or {}
    wanted = obs.release.spec.release_plan.batches[batch].canary_replicas
    return strategy.get("partition") is None and scaled_surge(
        _current_surge(obs.workload or {})
    ) >= scaled_surge(wanted)


def _surplus_new_pods(obs: BatchReleaseObserved, batch: int) -> tuple[Delete, ...]:
    """New pods beyond the step's share of the current replicas that the CloneSet would not create
    again: the fewest kept for which it wants no more pods than it has. Not-Ready pods go first, then
    the newest (as a CloneSet scales in). Nothing while the CloneSet is still catching up."""
    counts = _counts(obs)
    if counts is None or obs.update_revision != obs.release.status.update_revision:
        return ()  # a new template (continuous release, rollback) is the Rollout's to handle
    replicas, surge, partition, old, new = counts
    step = obs.release.spec.release_plan.batches[batch].canary_replicas
    keep = new
    for kept in range(scale(step, replicas), new):
        if old + kept >= pods_wanted(replicas, surge, partition, old, kept):
            keep = kept  # the CloneSet will not surge new pods back
            break
    pods = sorted(pods_on(obs.pods, obs.update_revision), key=_created, reverse=True)
    doomed = sorted(pods, key=pod_ready)[: new - keep]  # stable: the newest first within each
    return tuple(Delete(POD, name_of(p), str((p.get("metadata") or {}).get("uid") or "")) for p in doomed)


def _counts(obs: BatchReleaseObserved) -> tuple[int, int, int, int, int] | None:
    """(replicas, maxSurge, partition, old pods, new pods) of a CloneSet whose controller has seen its
    spec and whose status counts the pods listed; None otherwise."""
    cs = obs.workload
    if cs is None or not generation_observed(cs) or not _ready_for_blue_green(cs):
        return None
    live = [p for p in obs.pods if not deleting(p)]
    if status_int(cs, "replicas") != len(live):
        return None
    replicas = spec_replicas(cs)
    strategy = (cs.get("spec") or {}).get("updateStrategy") or {}
    surge = 0 if strategy.get("paused") else scaled_or_zero(strategy.get("maxSurge", 0), replicas)
    partition = min(scaled_or_zero(strategy.get("partition", 0), replicas), replicas)
    new = len(pods_on(obs.pods, obs.update_revision))
    return replicas, surge, partition, len(live) - new, new


def _created(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def _restore(cs: Mapping[str, Any], setting: OriginalSetting) -> Patch:
    body = {
        "metadata": {
            "annotations": {
                keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: None,
                keys.BATCH_RELEASE_CONTROL_ANNOTATION: None,
            }
        },
        "spec": {
            "minReadySeconds": setting.min_ready_seconds,
            # partition: the webhook's "100%" is still there when no batch ever ran (a rollback at
            # the start); Kruise leaves it, which holds the next release's pods back.
            "updateStrategy": {
                "maxSurge": setting.max_surge,
                "maxUnavailable": setting.max_unavailable,
                "partition": None,
            },
        },
    }
    # Fixed values from the saved annotation, which the same patch removes: idempotent.
    return Patch(CLONESET, name_of(cs), body)


def _ready_for_blue_green(cs: Mapping[str, Any]) -> bool:
    """Kruise's ValidateReadyForBlueGreenRelease for a CloneSet: ReCreate updates only."""
    spec = cs.get("spec") or {}
    kind = (spec.get("updateStrategy") or {}).get("type", "")
    return (
        bool(annotations_of(cs).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION))
        and kind in ("", "ReCreate")
        and spec.get("minReadySeconds") == MAX_READY_SECONDS
    )


def _current_surge(cs: Mapping[str, Any]) -> IntOrString:
    surge = ((cs.get("spec") or {}).get("updateStrategy") or {}).get("maxSurge", 0)
    return 0 if surge == _INITIAL_SURGE else surge


def _updated_ready(obs: BatchReleaseObserved) -> int:
    return status_int(obs.workload or {}, "updatedReadyReplicas")
