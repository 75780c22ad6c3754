"""Canary style for a Deployment (reference §2.7, `enableExtraWorkloadForCanary`): an extra canary Deployment.

What this module does: the pure `Control` that leaves the stable Deployment paused (as the webhook left
it) and releases the new version through a second Deployment: `generateName: <stable>-` with a name
derived from the BatchRelease's uid and the template (it looks like Kruise's random suffix, but a
repeated create finds the name taken instead of making a second canary), label
`rollouts.kruise.io/canary-deployment=<stable>`, the control-info annotation, the
`finalizer.rollouts.kruise.io/batch-release` finalizer, controller ownerReference = the BatchRelease,
spec copied from the stable Deployment with patchPodTemplateMetadata applied to the pod template,
`replicas: 0` and `paused: false`. Each batch scales it up (never down) to ceil(batch% * stable replicas).
A release has at most one canary: one of an earlier template (the stable's template changed before the
first batch) is deleted, and seen gone, before the canary of the current template is created.

Finalize removes control-info from the stable Deployment and, when the workload is handed back
(batchPartition null, or no release holds it any more), sets `paused: false`, so the native
RollingUpdate completes the release; with finalizingPolicy WaitResume it waits until the stable
Deployment is fully updated and available. It never writes `paused: true`: where Kruise writes
`paused = (batchPartition != nil)` it leaves a held workload as the webhook paused it, so a decision made
from a stale BatchRelease cannot pause a released workload again. Then the canary Deployments lose their
finalizer and are deleted (Kruise leaves that to garbage collection of the BatchRelease; deleting here
means a finished release leaves no extra pods behind even while the BatchRelease is kept). Done only
once all of that is seen: the stable resumed and observed by its controller, no canary left.

What it must not do: I/O, or change the stable Deployment's template or strategy.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.enums import FinalizingPolicy
from graylane.batchrelease.common import max_unavailable, name_of
from graylane.batchrelease.partition_style import control_info, controlled_by, owner_reference
from graylane.batchrelease.planner import (
    BatchReleaseAction,
    BatchReleaseObserved,
    CreateCanary,
    Delete,
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

__all__ = ["CanaryStyle", "build_canary", "canary_name", "find_canary"]

Obj = Mapping[str, Any]
DEPLOYMENT = "Deployment"
# The alphabet and length of the API server's generateName suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LENGTH = 5
_MAX_GENERATED_BASE = 58  # the API server's limit for a generateName base (63 - 5)


def find_canary(obs: BatchReleaseObserved) -> Obj | None:
    """The live canary of the stable's current template: the one named for it (`canary_name`), else the
    newest whose template is the stable one, ignoring pod-template-hash and patched keys.

    The name comes first because it was derived from the stable template when the canary was made, while
    the stored templates can differ in fields one of them got defaulted (an API server or a mutating
    webhook filling `imagePullPolicy` on the canary's create, not on the stable's older writes): a canary
    not recognised by its template alone would be deleted as outdated and created again, without end.
    """
    stable = obs.workload
    if stable is None:
        return None
    live = [d for d in obs.canaries if not d.get("metadata", {}).get("deletionTimestamp")]
    named = canary_name(stable, obs.release)
    mine = next((d for d in live if d.get("metadata", {}).get("name") == named), None)
    if mine is not None:
        return mine
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


def canary_name(stable: Obj, br: BatchRelease) -> str:
    """`<stable>-xxxxx`, the suffix a hash of the BatchRelease uid and the stable template."""
    template = _comparable(stable.get("spec", {}).get("template", {}), br)
    text = f"{br.metadata.get('uid', '')}/{json.dumps(template, sort_keys=True, separators=(',', ':'))}"
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    suffix = ""
    for _ in range(_SUFFIX_LENGTH):
        number, digit = divmod(number, len(_SUFFIX_ALPHABET))
        suffix += _SUFFIX_ALPHABET[digit]
    return f"{name_of(stable)}-"[:_MAX_GENERATED_BASE] + suffix


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

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None:
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

    def initialize(self, obs: BatchReleaseObserved) -> Step:
        stable, br = obs.workload, obs.release
        if stable is None:
            return Step(False)
        actions: list[BatchReleaseAction] = []
        if not controlled_by(stable, br):
            body = {"metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(br)}}}
            actions.append(Patch(DEPLOYMENT, name_of(stable), body))
        if find_canary(obs) is not None:
            return Step(not actions, tuple(actions))  # done once the claim is seen, too
        if obs.canaries:
            # One live canary per release: a canary of an earlier template (a newer image or a rollback
            # before the first batch was set up; Kruise would create a second one beside it), or ours
            # still being deleted, goes first; the new one is created once none is left in the cache.
            actions.extend(_release_canaries(obs))
            return Step(False, tuple(actions))
        # Not done yet: the next pass must see the new canary in the cache before batches start.
        canary = build_canary(stable, br)
        canary["metadata"]["name"] = canary_name(stable, br)
        actions.append(CreateCanary(canary, str(br.metadata.get("uid", "")), name_of(stable)))
        return Step(False, tuple(actions))

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step:
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
        return Step(True, (Patch(DEPLOYMENT, name_of(canary), {"spec": {"replicas": desired}}),))

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
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

    def finalize(self, obs: BatchReleaseObserved) -> Step:
        stable = obs.workload
        wait = obs.release.spec.release_plan.finalizing_policy == FinalizingPolicy.WAIT_RESUME
        actions: list[BatchReleaseAction] = []
        if stable is not None:
            resume = _resume(stable, obs.hand_back)
            if resume is not None:
                actions.append(resume)
            if wait and obs.hand_back and (resume is not None or not _all_ready(stable)):
                # Under WaitResume the canary pods keep serving until the resumed rollout is done.
                return Step(False, tuple(actions))
        actions.extend(_release_canaries(obs))
        # Done only when nothing is left to do: the hand-back seen, and seen by the stable's controller.
        return Step(not actions and (stable is None or generation_observed(stable)), tuple(actions))


def _resume(stable: Obj, hand_back: bool) -> Patch | None:
    """Remove control-info, and resume the stable when handing it back; None when already so.

    Fixed values (idempotent), and never `paused: true`: a held workload stays as the webhook paused it.
    """
    body: dict[str, Any] = {}
    if annotations_of(stable).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION):
        body["metadata"] = {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: None}}
    if hand_back and stable.get("spec", {}).get("paused"):
        body["spec"] = {"paused": False}
    return Patch(DEPLOYMENT, name_of(stable), body) if body else None


def _unfinalize(canary: Obj) -> tuple[BatchReleaseAction, ...]:
    meta = canary.get("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if keys.CANARY_DEPLOYMENT_FINALIZER not in finalizers:
        return ()
    kept = [f for f in finalizers if f != keys.CANARY_DEPLOYMENT_FINALIZER]
    body = {"metadata": {"finalizers": kept, "resourceVersion": meta.get("resourceVersion")}}
    return (Patch(DEPLOYMENT, str(meta.get("name")), body),)


def _release_canaries(obs: BatchReleaseObserved) -> tuple[BatchReleaseAction, ...]:
    """Drop our finalizer from every canary Deployment of this BatchRelease and delete the live ones."""
    actions: list[BatchReleaseAction] = []
    for canary in obs.canaries:
        meta = canary.get("metadata", {})
        actions.extend(_unfinalize(canary))
        if not meta.get("deletionTimestamp"):
            actions.append(Delete(DEPLOYMENT, str(meta.get("name")), str(meta.get("uid") or "")))
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
    return status_int(dep, "availableReplicas") + max_unavailable(dep) >= created
