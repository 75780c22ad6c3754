"""Blue-green style for a Deployment (reference §2.7): new pods are added beside the old ones.

What this module does: the pure `Control` of a blue-green release. The native Deployment controller
does the work; graylane only sets the knobs that make a rolling update stop half-way with both
versions up:

- Initialize disables an HPA on the workload (Kruise's way: `-DisableByRollout` appended to its
  `scaleTargetRef.name`, so the HPA finds no target), sets the old ReplicaSets' `minReadySeconds` to
  MaxReadySeconds, saves the Deployment's `maxSurge`, `maxUnavailable`, `minReadySeconds` and
  `progressDeadlineSeconds` in the `rollouts.kruise.io/original-deployment-strategy` annotation, and
  sets RollingUpdate `maxSurge: 1` / `maxUnavailable: 0`, `minReadySeconds: MaxReadySeconds`,
  `progressDeadlineSeconds: MaxProgressSeconds` and control-info. New pods then never count as
  available, so with `maxUnavailable: 0` no old pod is ever scaled down.
- Each batch unpauses the Deployment and raises `maxSurge` to the batch's replicas: that many new
  pods come up (a percentage other than 100% keeps one pod back, as Kruise's NewRSReplicasLimit).
- A Deployment scaled mid-release is rebalanced once its controller has applied the scale: the old
  pods made `replicas` again and the new ones held to the batch's surge (`_rebalance`: the controller's
  proportional scaling can leave fewer old pods and more new ones, and never corrects either).
- Finalize, once the workload is handed back, restores the saved settings (and the old ReplicaSets'
  `minReadySeconds`, which Kruise leaves at MaxReadySeconds), waits until every pod is updated and
  ready (the native controller scales the other version down), then re-enables the HPA.

The order makes a crash harmless: Initialize's Deployment patch comes last and carries control-info,
so until it is seen the whole Initialize is repeated (each write sets fixed values); the restore is
computed from the saved annotation and removes it in the same patch that restores the settings.

What it must not do: I/O, or move pods itself.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from graylane.api import keys
from graylane.api.common import IntOrString
from graylane.batchrelease.common import (
    deleting,
    max_unavailable,
    name_of,
    replicas_check,
    replicas_info,
    scaled_or_zero,
    version_of,
)
from graylane.batchrelease.partition_style import control_info, controlled_by
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
    status_int,
)
from graylane.planner.weights import partition_style_replicas

__all__ = [
    "HPA",
    "MAX_PROGRESS_SECONDS",
    "MAX_READY_SECONDS",
    "BlueGreenDeployment",
    "OriginalSetting",
    "hpa_disabled",
    "hpa_for",
    "hpa_patch",
    "scaled_surge",
    "surge_upgrade",
]

# Kruise's v1beta1.MaxReadySeconds / MaxProgressSeconds: minReadySeconds must stay below the deadline.
MAX_READY_SECONDS: Final = 2147483646
MAX_PROGRESS_SECONDS: Final = 2147483647
DEPLOYMENT: Final = "Deployment"
REPLICA_SET: Final = "ReplicaSet"
HPA: Final = "HorizontalPodAutoscaler"
_SCALE_BASE: Final = 10_000_000
_INITIAL_SURGE: Final = 1  # Initialize's maxSurge: "no batch yet" (Kruise reads 1 back as 0)
# Written by the Deployment controller on every ReplicaSet it scales: the Deployment size it scaled for.
_DESIRED_REPLICAS: Final = "deployment.kubernetes.io/desired-replicas"


@dataclasses.dataclass(frozen=True)
class OriginalSetting:
    """The `original-deployment-strategy` annotation (Go's OriginalDeploymentStrategy, in its order)."""

    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None
    min_ready_seconds: int = 0
    progress_deadline_seconds: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> OriginalSetting:
        try:
            raw = json.loads(text) if text else {}
        except ValueError:
            raw = {}
        raw = raw if isinstance(raw, dict) else {}
        return cls(
            raw.get("maxUnavailable"),
            raw.get("maxSurge"),
            int(raw.get("minReadySeconds") or 0),
            raw.get("progressDeadlineSeconds"),
        )

    def dump(self) -> str:
        """As Go's json.Marshal writes it: omitempty fields left out, compact."""
        out: dict[str, Any] = {}
        if self.max_unavailable is not None:
            out["maxUnavailable"] = self.max_unavailable
        if self.max_surge is not None:
            out["maxSurge"] = self.max_surge
        if self.min_ready_seconds:
            out["minReadySeconds"] = self.min_ready_seconds
        if self.progress_deadline_seconds is not None:
            out["progressDeadlineSeconds"] = self.progress_deadline_seconds
        return json.dumps(out, separators=(",", ":"))

    def filled_from(self, dep: Mapping[str, Any]) -> OriginalSetting:
        """Kruise's InitOriginalSetting: what is not saved yet is read from the Deployment (defaults
        25%/25%/600 s), so a repeated Initialize never overwrites the first save with its own values."""
        spec = dep.get("spec") or {}
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        return OriginalSetting(
            self.max_unavailable
            if self.max_unavailable is not None
            else rolling.get("maxUnavailable", "25%"),
            self.max_surge if self.max_surge is not None else rolling.get("maxSurge", "25%"),
            self.min_ready_seconds or _unless(int(spec.get("minReadySeconds") or 0), MAX_READY_SECONDS, 0),
            self.progress_deadline_seconds
            if self.progress_deadline_seconds is not None
            else _unless(int(spec.get("progressDeadlineSeconds") or 600), MAX_PROGRESS_SECONDS, 600),
        )


def _unless(value: int, ours: int, default: int) -> int:
    """A value a release set is never saved as the user's (a second Initialize after a lost first)."""
    return default if value == ours else value


class BlueGreenDeployment:
    """The blue-green `Control` for an apps/v1 Deployment."""

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None:
        return replicas_info(obs, updated_ready=_new_rs_ready, stable_label=True)

    def initialize(self, obs: BatchReleaseObserved) -> Step:
        dep = obs.workload
        if dep is None:
            return Step(False)
        if controlled_by(dep, obs.release):
            return Step(True)
        hpa = hpa_for(obs.hpas, DEPLOYMENT, name_of(dep))
        actions = [] if hpa is None else [hpa_patch(hpa, disable=True)]
        actions += [_min_ready(rs, MAX_READY_SECONDS) for rs in _old_replica_sets(obs)]
        setting = OriginalSetting.parse(annotations_of(dep).get(keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION))
        body = {
            "metadata": {
                "annotations": {
                    keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: setting.filled_from(dep).dump(),
                    keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(obs.release),
                }
            },
            "spec": {
                "strategy": _rolling_update(_INITIAL_SURGE, 0),
                "minReadySeconds": MAX_READY_SECONDS,
                "progressDeadlineSeconds": MAX_PROGRESS_SECONDS,
            },
        }
        # Guarded: the settings saved must be the ones this decision read, not a later user's edit.
        actions.append(Patch(DEPLOYMENT, name_of(dep), body, version_of(dep)))
        return Step(False, tuple(actions))

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step:
        rebalance = _rebalance(obs)
        if rebalance is None or rebalance:
            # The Deployment controller is still scaling, or left the versions off their shares.
            return Step(False, rebalance or ())
        return surge_upgrade(
            obs,
            batch,
            kind=DEPLOYMENT,
            ready=_ready_for_blue_green,
            current=_current_surge,
            # The webhook may have paused the Deployment (a revision change); blue-green runs unpaused.
            body=lambda surge: {"spec": {"paused": False, "strategy": _rolling_update(surge, 0)}},
        )

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
        return replicas_check(obs, batch, to_replicas=partition_style_replicas, updated_ready=_new_rs_ready)

    def finalize(self, obs: BatchReleaseObserved) -> Step:
        dep = obs.workload
        if dep is None:
            return Step(True)
        if not obs.hand_back:
            return Step(True)  # a continuous release: Kruise leaves the workload as it is (unsupported)
        saved = annotations_of(dep).get(keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION)
        if saved is not None:
            return Step(False, _restore(obs, dep, OriginalSetting.parse(saved)))
        if not generation_observed(dep) or not _all_updated_and_ready(dep):
            return Step(False)  # the native controller scales the other version down; its events wake us
        hpa = hpa_for(obs.hpas, DEPLOYMENT, name_of(dep))
        if hpa is not None and hpa_disabled(hpa):
            return Step(False, (hpa_patch(hpa, disable=False),))
        return Step(True)


def surge_upgrade(
    obs: BatchReleaseObserved,
    batch: int,
    *,
    kind: str,
    ready: Callable[[Mapping[str, Any]], bool],
    current: Callable[[Mapping[str, Any]], IntOrString],
    body: Callable[[IntOrString], dict[str, Any]],
) -> Step:
    """A blue-green batch: raise the workload's maxSurge to the batch's replicas, never lower it.

    What differs between kinds is passed in: `ready` (Kruise's ValidateReadyForBlueGreenRelease, so a
    workload not, or no longer, under our settings is never surged), `current` (the surge written,
    Initialize's 1 read as "no batch yet") and `body` (the patch that sets a surge).
    """
    workload = obs.workload
    if workload is None:
        return Step(False)
    replicas = spec_replicas(workload)
    if replicas == 0:
        return Step(True)
    if not ready(workload):
        return Step(False)
    plan = obs.release.spec.release_plan
    labels = pod_label_patches(obs.pods, plan.batches, replicas, batch, plan.rollout_id)
    desired = plan.batches[batch].canary_replicas
    if scaled_surge(current(workload)) >= scaled_surge(desired):
        return Step(True, labels)
    # Guarded: the surge only grows, judged from the strategy this version holds.
    return Step(True, (Patch(kind, name_of(workload), body(desired), version_of(workload)), *labels))


def _restore(
    obs: BatchReleaseObserved, dep: Mapping[str, Any], setting: OriginalSetting
) -> tuple[Patch, ...]:
    """The saved settings back, our keys gone; old ReplicaSets get a normal minReadySeconds first."""
    restored = setting.filled_from({})
    rs_patches = [
        _min_ready(rs, restored.min_ready_seconds)
        for rs in _old_replica_sets(obs)
        if int((rs.get("spec") or {}).get("minReadySeconds") or 0) == MAX_READY_SECONDS
    ]
    body = {
        "metadata": {
            "annotations": {
                keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: None,
                keys.BATCH_RELEASE_CONTROL_ANNOTATION: None,
            },
            "labels": {keys.STABLE_REVISION_LABEL: None},
        },
        "spec": {
            "paused": False,
            "minReadySeconds": restored.min_ready_seconds,
            "progressDeadlineSeconds": restored.progress_deadline_seconds,
            "strategy": _rolling_update(restored.max_surge, restored.max_unavailable),
        },
    }
    # Fixed values computed from the saved annotation, which the same patch removes: idempotent.
    return (*rs_patches, Patch(DEPLOYMENT, name_of(dep), body))


def _rebalance(obs: BatchReleaseObserved) -> tuple[Patch, ...] | None:
    """After the Deployment is scaled mid-release: every old pod kept, the new ones at the batch's share.

    The Deployment controller scales a Deployment in a rolling update proportionally, each ReplicaSet by
    its share of replicas + maxSurge, rounded; then it never scales an old ReplicaSet up again, and
    never scales the new one down while the pods exceed replicas + maxSurge. From 1 old + 1 new pod
    scaled to 7 at 50% it leaves 5 old + 6 new: fewer old pods than the Deployment's replicas though
    no traffic has moved, and more new ones than the step asks. So once the controller has applied a
    scale (each scaled ReplicaSet's desired-replicas annotation is the new size) the largest old
    ReplicaSet is set to make the old pods `replicas` again and the new one is held to the pods the
    batch's maxSurge allows, which the controller then keeps (its surge arithmetic is satisfied).
    None: wait, the controller has not applied the scale yet; () when the shares are right.
    """
    dep = obs.workload
    new = next((rs for rs in obs.replica_sets if _revision(rs) == obs.update_revision), None)
    old = sorted(_old_replica_sets(obs), key=_rs_replicas, reverse=True)
    if dep is None or new is None or not old or not _ready_for_blue_green(dep):
        return ()
    replicas = spec_replicas(dep)
    active = [rs for rs in (new, *old) if _rs_replicas(rs) > 0]
    if not generation_observed(dep) or any(
        annotations_of(rs).get(_DESIRED_REPLICAS) != str(replicas) for rs in active
    ):
        return None
    actions: list[Patch] = []
    deficit = replicas - sum(_rs_replicas(rs) for rs in old)
    if deficit:
        target = max(_rs_replicas(old[0]) + deficit, 0)
        actions.append(_scale(old[0], target))
    rolling = ((dep.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    allowed = scaled_or_zero(rolling.get("maxSurge", 0), replicas)  # as the controller resolves it
    if _rs_replicas(new) > allowed:
        actions.append(_scale(new, allowed))
    return tuple(actions)


# -- the HPA ----------------------------------------------------------------------------------------


def hpa_for(
    hpas: Iterable[Mapping[str, Any]], kind: str, name: str, api_version: str = "apps/v1"
) -> Mapping[str, Any] | None:
    """The HPA scaling this workload, enabled or disabled by a release (Kruise's findHPAForWorkload)."""
    for hpa in hpas:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("apiVersion") == api_version and ref.get("kind") == kind and _target(ref) == name:
            return hpa
    return None


def hpa_patch(hpa: Mapping[str, Any], *, disable: bool) -> Patch:
    """Point the HPA away from its workload (disable) or back at it; a fixed value, idempotent."""
    ref = dict((hpa.get("spec") or {}).get("scaleTargetRef") or {})
    name = _target(ref)
    ref["name"] = name + keys.HPA_DISABLED_SUFFIX if disable else name
    return Patch(HPA, name_of(hpa), {"spec": {"scaleTargetRef": ref}})


def hpa_disabled(hpa: Mapping[str, Any]) -> bool:
    """Whether a release has pointed the HPA away from its workload."""
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return str(ref.get("name") or "").endswith(keys.HPA_DISABLED_SUFFIX)


def _target(ref: Mapping[str, Any]) -> str:
    """The workload a scaleTargetRef names, every disabling suffix stripped (a repeat may add two)."""
    name = str(ref.get("name") or "")
    while name.endswith(keys.HPA_DISABLED_SUFFIX):
        name = name[: -len(keys.HPA_DISABLED_SUFFIX)]
    return name


# -- small helpers ----------------------------------------------------------------------------------


def _rolling_update(max_surge: IntOrString | None, max_unavailable: IntOrString | None) -> dict[str, Any]:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
    }


def _scale(rs: Mapping[str, Any], replicas: int) -> Patch:
    # Guarded: decided from this version of the ReplicaSet, which its controller may be changing.
    return Patch(REPLICA_SET, name_of(rs), {"spec": {"replicas": replicas}}, version_of(rs))


def _rs_replicas(rs: Mapping[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas") or 0)


def _min_ready(rs: Mapping[str, Any], seconds: int) -> Patch:
    return Patch(REPLICA_SET, name_of(rs), {"spec": {"minReadySeconds": seconds}})


def _old_replica_sets(obs: BatchReleaseObserved) -> list[Mapping[str, Any]]:
    """The workload's ReplicaSets of other revisions (the new one follows the Deployment's settings)."""
    return [rs for rs in obs.replica_sets if _revision(rs) != obs.update_revision and not deleting(rs)]


def _new_rs_ready(obs: BatchReleaseObserved) -> int:
    """Ready pods of the new ReplicaSet (Kruise: the Deployment's counts mix both versions)."""
    new = next((rs for rs in obs.replica_sets if _revision(rs) == obs.update_revision), None)
    return status_int(new, "readyReplicas") if new is not None else 0


def _ready_for_blue_green(dep: Mapping[str, Any]) -> bool:
    """Kruise's ValidateReadyForBlueGreenRelease for a Deployment."""
    spec = dep.get("spec") or {}
    strategy = spec.get("strategy") or {}
    return (
        bool(annotations_of(dep).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION))
        and strategy.get("type", "RollingUpdate") == "RollingUpdate"
        and strategy.get("rollingUpdate") is not None
        and spec.get("minReadySeconds") == MAX_READY_SECONDS
        and spec.get("progressDeadlineSeconds") == MAX_PROGRESS_SECONDS
    )


def _current_surge(dep: Mapping[str, Any]) -> IntOrString:
    rolling = ((dep.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = rolling.get("maxSurge", 0)
    # Initialize's 1 means "no batch yet"; a user's own 1 would be re-set to the batch value: harmless.
    return 0 if surge == _INITIAL_SURGE else surge


def _all_updated_and_ready(dep: Mapping[str, Any]) -> bool:
    """Kruise's waitAllUpdatedAndReady: not paused, every ready pod updated, availability within
    maxUnavailable."""
    if (dep.get("spec") or {}).get("paused"):
        return False
    if status_int(dep, "readyReplicas") != status_int(dep, "updatedReplicas"):
        return False
    return status_int(dep, "availableReplicas") + max_unavailable(dep) >= status_int(dep, "replicas")


def scaled_surge(value: IntOrString) -> int:
    """A surge (int or percentage) on a common scale, so two of them compare as Kruise compares them."""
    return scaled_or_zero(value, _SCALE_BASE)


def _revision(rs: Mapping[str, Any]) -> str:
    return str(labels_of(rs).get(keys.POD_TEMPLATE_HASH_LABEL, ""))
