"""API objects of a release caught at a chosen moment, for the FakeApi: a Deployment `demo` (5 replicas,
v1 → v2) under a Rollout `demo` with the steps [1, 100%], and its BatchRelease.

`last_step_ready(style)` is the moment before finalisation: the Rollout waits in StepUpgrade of its
last step, the BatchRelease reports that batch Ready, the workload is held as the webhook and the
BatchRelease left it (paused, in-progressing; partition style: Recreate, the strategy annotations and
the controlled-by label; canary style: a canary Deployment with all 5 new pods).
"""

from __future__ import annotations

import json
from typing import Any

from tests.unit.runtime.fakeapi import TEMPLATE_DEFAULTS, FakeApi

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease, ReleaseBatch, ReleasePlan
from graylane.api.hashing import release_plan_hash, rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.batchrelease.canary_style import build_canary, canary_name
from graylane.batchrelease.partition_style import control_info
from graylane.kube import resources as r
from graylane.observe.workloads import template_revision

NS = "ns"
STEPS: list[dict[str, Any]] = [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]


def template(image: str, pod_hash: str = "") -> dict[str, Any]:
    labels = {"app": "demo", **({"pod-template-hash": pod_hash} if pod_hash else {})}
    # As the API server stores it: defaulted (fakeapi.TEMPLATE_DEFAULTS), so a canary copied from it
    # (and defaulted on create) has the same template.
    container = {"name": "main", "image": image, **TEMPLATE_DEFAULTS}
    return {"metadata": {"labels": labels}, "spec": {"containers": [container]}}


def rollout(style: str, *, status: dict[str, Any] | None = None) -> dict[str, Any]:
    canary: dict[str, Any] = {"steps": STEPS}
    if style == "Canary":
        canary["enableExtraWorkloadForCanary"] = True
    obj: dict[str, Any] = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {
            "name": "demo",
            "namespace": NS,
            "uid": "rollout-uid",
            "finalizers": [keys.ROLLOUT_FINALIZER],
        },
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
        "status": status or {},
    }
    parsed = Rollout.from_obj(obj)
    obj["metadata"]["annotations"] = {keys.ROLLOUT_HASH_ANNOTATION: rollout_hash(parsed.spec.strategy)}
    return obj


def release_plan(style: str, partition: int | None) -> dict[str, Any]:
    plan = ReleasePlan(
        batches=[ReleaseBatch(canary_replicas=s["replicas"]) for s in STEPS],
        batch_partition=partition,
        rolling_style=style,
        enable_extra_workload_for_canary=style == "Canary",
    )
    return plan.to_obj()


def batch_release(style: str) -> dict[str, Any]:
    plan = release_plan(style, 1)
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "BatchRelease",
        "metadata": {
            "name": "demo",
            "namespace": NS,
            "uid": "br-uid",
            "generation": 1,
            "finalizers": [keys.BATCH_RELEASE_FINALIZER],
            "ownerReferences": [
                {
                    "apiVersion": "rollouts.kruise.io/v1beta1",
                    "kind": "Rollout",
                    "name": "demo",
                    "uid": "rollout-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "releasePlan": plan,
        },
        "status": {
            "phase": "Progressing",
            "observedGeneration": 1,
            "observedReleasePlanHash": release_plan_hash(ReleasePlan.from_obj(plan)),
            "observedWorkloadReplicas": 5,
            "stableRevision": "h1",
            "updateRevision": template_revision(template("demo:v2")),
            "canaryStatus": {
                "batchState": "Ready",
                "currentBatch": 1,
                "updatedReplicas": 5,
                "updatedReadyReplicas": 5,
            },
        },
    }


def deployment(style: str, br: dict[str, Any]) -> dict[str, Any]:
    parsed = BatchRelease.from_obj(br)
    annotations = {
        keys.IN_PROGRESSING_ANNOTATION: json.dumps({"rolloutName": "demo"}),
        keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(parsed),
    }
    labels = {keys.WORKLOAD_TYPE_LABEL: "deployment", keys.STABLE_REVISION_LABEL: "h1", "app": "demo"}
    strategy: dict[str, Any] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    updated = 0
    if style == "Partition":
        annotations[keys.DEPLOYMENT_STRATEGY_ANNOTATION] = (
            '{"rollingStyle":"Partition","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"},"partition":"100%"}'
        )
        annotations[keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION] = (
            '{"updatedReadyReplicas":5,"expectedUpdatedReplicas":5}'
        )
        labels[keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL] = "true"
        strategy = {"type": "Recreate"}
        updated = 5
    return {
        "metadata": {
            "name": "demo",
            "namespace": NS,
            "uid": "dep-uid",
            "generation": 2,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "replicas": 5,
            "paused": True,
            "selector": {"matchLabels": {"app": "demo"}},
            "strategy": strategy,
            "template": template("demo:v2"),
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 5,
            "updatedReplicas": updated,
            "availableReplicas": 5,
        },
    }


def replica_set(
    name: str, image: str, pod_hash: str, replicas: int, owner: str, created: str
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "labels": {"app": "demo", "pod-template-hash": pod_hash},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": owner,
                    "uid": f"{owner}-uid" if owner != "demo" else "dep-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": replicas, "template": template(image, pod_hash)},
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
    }


def last_step_ready(api: FakeApi, style: str) -> None:
    """Store the objects of a release whose last batch is Ready, before the Rollout has seen it."""
    br = batch_release(style)
    dep = deployment(style, br)
    api.put(r.BATCHRELEASE, br)
    api.put(r.DEPLOYMENT, dep)
    new_hash = template_revision(template("demo:v2"))
    if style == "Partition":
        api.put(r.REPLICASET, replica_set("demo-h1", "demo:v1", "h1", 0, "demo", "2026-01-01T00:00:01Z"))
        api.put(
            r.REPLICASET,
            replica_set(f"demo-{new_hash}", "demo:v2", new_hash, 5, "demo", "2026-01-01T00:00:02Z"),
        )
    else:
        api.put(r.REPLICASET, replica_set("demo-h1", "demo:v1", "h1", 5, "demo", "2026-01-01T00:00:01Z"))
        canary = build_canary(dep, BatchRelease.from_obj(br))
        name = canary_name(dep, BatchRelease.from_obj(br))
        canary["metadata"] |= {"name": name, "uid": f"{name}-uid", "generation": 1}
        canary["spec"]["replicas"] = 5
        canary["status"] = {"observedGeneration": 1, "replicas": 5, "availableReplicas": 5}
        api.put(r.DEPLOYMENT, canary)
        api.put(r.REPLICASET, replica_set(f"{name}-c2", "demo:v2", "c2", 5, name, "2026-01-01T00:00:02Z"))
        new_hash = "c2"
    parsed = Rollout.from_obj(rollout(style))
    sub = {
        "observedWorkloadGeneration": 2,
        "rolloutHash": rollout_hash(parsed.spec.strategy),
        "stableRevision": "h1",
        "canaryRevision": template_revision(template("demo:v2")),
        "podTemplateHash": new_hash,
        "currentStepIndex": 2,
        "nextStepIndex": -1,
        "currentStepState": "StepUpgrade",
        "lastUpdateTime": "2026-01-01T00:00:10Z",
        "canaryReplicas": 5,
        "canaryReadyReplicas": 5,
    }
    condition = {
        "type": "Progressing",
        "status": "True",
        "reason": "InRolling",
        "message": "Rollout is in Progressing",
        "lastUpdateTime": "2026-01-01T00:00:05Z",
        "lastTransitionTime": "2026-01-01T00:00:05Z",
    }
    status = {
        "observedGeneration": 1,
        "phase": "Progressing",
        "message": "Rollout is in step(2/2), and upgrade workload to new version",
        "conditions": [condition],
        "canaryStatus": sub,
        "currentStepIndex": 2,
        "currentStepState": "StepUpgrade",
    }
    api.put(r.ROLLOUT, rollout(style, status=status))
