"""Canary style for a Deployment (reference §2.7, `enableExtraWorkloadForCanary`): an extra canary Deployment.

What this module does: the pure `Control` that leaves the stable Deployment paused (as the webhook left
it) and releases the new version through a second Deployment: `generateName: <stable>-` (a random suffix,
not `-canary`), label `rollouts.kruise.io/canary-deployment=<stable>`, the control-info annotation, the
`finalizer.rollouts.kruise.io/batch-release` finalizer, controller ownerReference = the BatchRelease,
spec copied from the stable Deployment with patchPodTemplateMetadata applied to the pod template,
`replicas: 0` and `paused: false`. Each batch scales it up (never down) to ceil(batch% * stable replicas).
Finalize removes control-info from the stable Deployment and sets `spec.paused = (batchPartition != nil)`,
so normally the native RollingUpdate completes the release; with finalizingPolicy WaitResume it waits
until the stable Deployment is fully updated and available. Then the canary Deployments lose their
finalizer and are deleted (Kruise leaves that to garbage collection of the BatchRelease; deleting here
means a finished release leaves no extra pods behind even while the BatchRelease is kept).

What it must not do: I/O, or change the stable Deployment's template or strategy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.common import scaled_int_or_percent
from graylane.api.enums import FinalizingPolicy
from graylane.batchrelease.partition_style import control_info, controlled_by, owner_reference
from graylane.batchrelease.planner import (
    Action,
    CreateCanary,
    Delete,
    Observed,
    Patch,
    Step,
    WorkloadInfo,
    annotations_of,
    batch_step,
    generation_observed,
    spec_replicas,
    status_int,
)
from graylane.planner.weights import canary_style_replicas

__all__ = ["CanaryStyle", "build_canary", "find_canary"]

Obj = Mapping[str, Any]
DEPLOYMENT = "Deployment"


def find_canary(obs: Observed) -> Obj | None:
    """Newest live canary whose template is the stable one, ignoring pod-template-hash and patched keys."""
    stable = obs.workload
    if stable is None:
        return None
    live = [d for d in obs.canaries if not d.get("metadata", {}).get("deletionTimestamp")]
    live.sort(key=lambda d: str(d.get("metadata", {}).get("creationTimestamp", "")), reverse=True)
    want = _comparable(stable.get("spec", {}).get("template", {}), obs.release)
    return next((d for d in live if _comparable(d["spec"].get("template", {}), obs.release) == want), None)


def _comparable(template: Obj, br: BatchRelease) -> dict[str, Any]:
    patch = br.spec.release_plan.patch_pod_template_metadata
    clean = copy.deepcopy(dict(template))
    meta = clean.setdefault("metadata", {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != keys.POD_TEMPLATE_HASH_LABEL}
    annotations = dict(meta.get("annotations") or {})
    if patch is not None:
        labels = {k: v for k, v in labels.items() if k not in patch.labels}
        annotations = {k: v for k, v in annotations.items() if k not in patch.annotations}
    meta["labels"], meta["annotations"] = labels, annotations
    return clean


def build_canary(stable: Obj, br: BatchRelease) -> dict[str, Any]:
    """The canary Deployment: a copy of the stable spec at 0 replicas, owned by the BatchRelease."""
    name = str(stable["metadata"]["name"])
    spec = copy.deepcopy(dict(stable.get("spec", {})))
    template = spec.setdefault("template", {}).setdefault("metadata", {})
    patch = br.spec.release_plan.patch_pod_template_metadata
    # No empty maps: the API server drops them, and the template the controller asks the API about
    # (`_canary_exists`) must hash like the one it created, or a cache that lags makes a second canary.
    if patch is not None and patch.labels:
        template["labels"] = {**(template.get("labels") or {}), **patch.labels}
    if patch is not None and patch.annotations:
        template["annotations"] = {**(template.get("annotations") or {}), **patch.annotations}
    spec["replicas"], spec["paused"] = 0, False
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "generateName": f"{name}-",
            "namespace": stable["metadata"].get("namespace"),
            "labels": {keys.CANARY_DEPLOYMENT_LABEL: name},
            "annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(br)},
            "finalizers": [keys.CANARY_DEPLOYMENT_FINALIZER],
            "ownerReferences": [owner_reference(br)],
        },
        "spec": spec,
    }


class CanaryStyle:
    """The canary-style `Control` for an apps/v1 Deployment with an extra canary Deployment."""

    def info(self, obs: Observed) -> WorkloadInfo | None:
        stable = obs.workload
        if stable is None:
            return None
        canary = find_canary(obs)
        return WorkloadInfo(
            replicas=spec_replicas(stable),
            observed=generation_observed(stable),
            promoted=status_int(stable, "replicas") == status_int(stable, "updatedReplicas"),
            updated=status_int(canary, "replicas") if canary is not None else 0,
            updated_ready=status_int(canary, "availableReplicas") if canary is not None else 0,
            update_revision=obs.update_revision,
            stable_revision=obs.stable_revision,
        )

    def initialize(self, obs: Observed) -> Step:
        stable, br = obs.workload, obs.release
        if stable is None:
            return Step(False)
        actions: list[Action] = []
        if not controlled_by(stable, br):
            body = {"metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(br)}}}
            actions.append(Patch(DEPLOYMENT, _name(stable), body))
        if find_canary(obs) is not None:
            return Step(True, tuple(actions))
        # Not done yet: the next pass must see the new canary in the cache before batches start.
        actions.append(CreateCanary(build_canary(stable, br), str(br.metadata.get("uid", "")), _name(stable)))
        return Step(False, tuple(actions))

    def upgrade(self, obs: Observed, batch: int) -> Step:
        stable = obs.workload
        if stable is None:
            return Step(False)
        replicas = spec_replicas(stable)
        if replicas == 0:
            return Step(True)
        canary = find_canary(obs)
        if canary is None or not generation_observed(canary):
            return Step(False)  # wait for the canary Deployment to be observed by its controller
        desired = canary_style_replicas(
            obs.release.spec.release_plan.batches[batch].canary_replicas, replicas
        )
        if spec_replicas(canary) >= desired:
            return Step(True)  # only ever scaled up: a lower batch never removes canary pods
        return Step(True, (Patch(DEPLOYMENT, _name(canary), {"spec": {"replicas": desired}}),))

    def check(self, obs: Observed, batch: int) -> Step:
        stable = obs.workload
        if stable is None:
            return Step(False)
        replicas = spec_replicas(stable)
        if replicas == 0:
            return Step(True)
        canary = find_canary(obs)
        if canary is None or not generation_observed(canary):
            return Step(False)
        desired = canary_style_replicas(
            obs.release.spec.release_plan.batches[batch].canary_replicas, replicas
        )
        updated, ready = status_int(canary, "replicas"), status_int(canary, "availableReplicas")
        return batch_step(obs, batch, desired=desired, updated=updated, updated_ready=ready)

    def finalize(self, obs: Observed) -> Step:
        stable, br = obs.workload, obs.release
        wait = br.spec.release_plan.finalizing_policy == FinalizingPolicy.WAIT_RESUME
        if stable is not None:
            resume = _resume(stable, br)
            if resume is not None:
                # Under WaitResume the canary pods keep serving until the resumed rollout is done.
                return Step(not wait, (resume, *(() if wait else _release_canaries(obs))))
            if wait and not _all_ready(stable):
                return Step(False)
        return Step(True, _release_canaries(obs))


def _resume(stable: Obj, br: BatchRelease) -> Patch | None:
    """Remove control-info and set paused = (batchPartition != nil); None when already so."""
    pause = br.spec.release_plan.batch_partition is not None
    has_info = bool(annotations_of(stable).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION))
    if not has_info and bool(stable.get("spec", {}).get("paused")) == pause:
        return None
    body = {
        "metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: None}},
        "spec": {"paused": pause},
    }
    return Patch(DEPLOYMENT, _name(stable), body)


def _release_canaries(obs: Observed) -> tuple[Action, ...]:
    """Drop our finalizer from every canary Deployment of this BatchRelease and delete the live ones."""
    actions: list[Action] = []
    for canary in obs.canaries:
        meta = canary.get("metadata", {})
        finalizers = list(meta.get("finalizers") or [])
        if keys.CANARY_DEPLOYMENT_FINALIZER in finalizers:
            kept = [f for f in finalizers if f != keys.CANARY_DEPLOYMENT_FINALIZER]
            body = {"metadata": {"finalizers": kept, "resourceVersion": meta.get("resourceVersion")}}
            actions.append(Patch(DEPLOYMENT, str(meta.get("name")), body))
        if not meta.get("deletionTimestamp"):
            actions.append(Delete(DEPLOYMENT, str(meta.get("name"))))
    return tuple(actions)


def _all_ready(dep: Obj) -> bool:
    """waitAllUpdatedAndReady: resumed, every pod updated, unavailable pods within maxUnavailable."""
    if dep.get("spec", {}).get("paused") or not generation_observed(dep):
        return False
    created, updated = status_int(dep, "replicas"), status_int(dep, "updatedReplicas")
    # Kruise checks only created == updated, which also holds mid-rollout once the old ReplicaSet is at 0
    # and the new one still short (4 of 5 with maxUnavailable 1): every *desired* pod must be updated.
    if created != updated or updated < spec_replicas(dep):
        return False
    return status_int(dep, "availableReplicas") + _max_unavailable(dep) >= created


def _max_unavailable(dep: Obj) -> int:
    replicas = spec_replicas(dep)
    strategy = dep.get("spec", {}).get("strategy", {})
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    ru = strategy.get("rollingUpdate") or {}
    surge = scaled_int_or_percent(ru.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, round_up=False)
    return min(1 if surge == 0 and unavailable == 0 else unavailable, replicas)


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))
