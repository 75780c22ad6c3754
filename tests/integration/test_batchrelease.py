"""BatchRelease on the real cluster, driven directly (no Rollout): canary style and partition style.

The Deployment is paused and given the new image by hand, which is what the mutating webhook does when a
Rollout manages it; then a v1beta1 BatchRelease walks batchPartition 0 -> 1 -> null, as the Rollout
controller would, and the pods are counted the way a user would (Ready, not terminating, by image).
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.batchrelease import ReleasePlan
from graylane.api.hashing import release_plan_hash
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.observe.workloads import template_revision
from tests.integration.builders import deployment, set_image_patch
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.waiting import eventually

V1, V2 = "demo:v1", "demo:v2"
GRAY = {"opensergo.io/canary-gray": "gray"}


def _batch_release(namespace: str, style: str, **plan: Any) -> Obj:
    release_plan = {
        "batches": [{"canaryReplicas": "20%"}, {"canaryReplicas": "90%"}],
        "batchPartition": 0,
        "rollingStyle": style,
        "enableExtraWorkloadForCanary": False,  # required by the CRD (no omitempty in Go)
        **plan,
    }
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "BatchRelease",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "releasePlan": release_plan,
        },
    }


def _image(obj: Obj) -> str:
    spec = obj["spec"]
    containers = (spec.get("template", {}).get("spec") or spec).get("containers") or []
    return str(containers[0]["image"])


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def _pods(kube: KubeClient, namespace: str) -> list[Obj]:
    return list((await kube.list(r.POD, namespace, label_selector="app=demo")).get("items") or [])


async def _ready_by_image(kube: KubeClient, namespace: str) -> dict[str, int]:
    pods = await _pods(kube, namespace)
    live = [p for p in pods if _ready(p) and not p["metadata"].get("deletionTimestamp")]
    return dict(collections.Counter(_image(p) for p in live))


async def _settled_by_image(kube: KubeClient, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
    """(every pod by image, terminating ones included; Ready pods by image): over when both agree."""
    pods = await _pods(kube, namespace)
    return dict(collections.Counter(_image(p) for p in pods)), await _ready_by_image(kube, namespace)


async def _given_paused_v2(kube: KubeClient, namespace: str) -> None:
    """5 Ready v1 pods, then what the webhook would do on `kubectl set image`: pause + new template."""
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=5, image=V1))
    await eventually(lambda: _ready_by_image(kube, namespace), lambda c: c == {V1: 5}, what="5 v1 pods")
    patch = {"spec": {"paused": True, **set_image_patch(V2)["spec"]}}
    await kube.patch(r.DEPLOYMENT, "demo", patch, namespace, patch_type="strategic")


async def _release(kube: KubeClient, namespace: str) -> Obj:
    return await kube.get(r.BATCHRELEASE, "demo", namespace)


async def _wait_batch_ready(kube: KubeClient, namespace: str, batch: int, updated: int) -> Obj:
    def accept(br: Obj) -> bool:
        status, canary = br.get("status") or {}, (br.get("status") or {}).get("canaryStatus") or {}
        plan_hash = release_plan_hash(ReleasePlan.from_obj(br["spec"]["releasePlan"]))
        return (
            status.get("phase") == "Progressing"
            and status.get("observedGeneration") == br["metadata"]["generation"]
            and status.get("observedReleasePlanHash") == plan_hash
            and canary.get("currentBatch") == batch
            and canary.get("batchState") == "Ready"
            and canary.get("updatedReadyReplicas") == updated
        )

    return await eventually(
        lambda: _release(kube, namespace), accept, what=f"batch {batch} Ready", timeout=90
    )


async def _set_partition(kube: KubeClient, namespace: str, partition: int | None) -> None:
    body = {"spec": {"releasePlan": {"batchPartition": partition}}}
    await kube.patch(r.BATCHRELEASE, "demo", body, namespace)


async def _wait_completed(kube: KubeClient, namespace: str) -> Obj:
    return await eventually(
        lambda: _release(kube, namespace),
        lambda br: (br.get("status") or {}).get("phase") == "Completed",
        what="BatchRelease Completed",
        timeout=90,
    )


async def _canaries(kube: KubeClient, namespace: str) -> list[Obj]:
    listed = await kube.list(r.DEPLOYMENT, namespace, label_selector=f"{keys.CANARY_DEPLOYMENT_LABEL}=demo")
    return list(listed.get("items") or [])


@pytest.mark.parametrize("policy", ["Immediate", "WaitResume"])
async def test_canary_style_walks_batches_and_hands_back_to_the_native_rollout(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess, policy: str
) -> None:
    await _given_paused_v2(kube, namespace)
    plan = {"enableExtraWorkloadForCanary": True, "patchPodTemplateMetadata": {"labels": GRAY}}
    plan["finalizingPolicy"] = policy
    await kube.create(r.BATCHRELEASE, _batch_release(namespace, "Canary", **plan))

    await _wait_batch_ready(kube, namespace, batch=0, updated=1)
    assert await _ready_by_image(kube, namespace) == {V1: 5, V2: 1}
    canary = (await _canaries(kube, namespace))[0]
    assert canary["metadata"]["name"].startswith("demo-")
    assert canary["metadata"]["finalizers"] == [keys.CANARY_DEPLOYMENT_FINALIZER]
    assert canary["metadata"]["ownerReferences"][0]["kind"] == "BatchRelease"
    gray = [p for p in await _pods(kube, namespace) if _image(p) == V2]
    assert all(p["metadata"]["labels"].get("opensergo.io/canary-gray") == "gray" for p in gray)
    stable = await kube.get(r.DEPLOYMENT, "demo", namespace)
    assert keys.BATCH_RELEASE_CONTROL_ANNOTATION in stable["metadata"]["annotations"]
    br = await _release(kube, namespace)
    assert keys.BATCH_RELEASE_FINALIZER in br["metadata"]["finalizers"]

    await _set_partition(kube, namespace, 1)
    await _wait_batch_ready(kube, namespace, batch=1, updated=5)  # ceil(5 x 90%) = 5 canary pods
    assert await _ready_by_image(kube, namespace) == {V1: 5, V2: 5}

    await _set_partition(kube, namespace, None)
    await _wait_completed(kube, namespace)
    stable = await kube.get(r.DEPLOYMENT, "demo", namespace)
    if policy == "WaitResume":  # Completed only once the native rollout has updated every pod
        assert stable["status"]["updatedReplicas"] == stable["status"]["replicas"] == 5
    await eventually(lambda: _canaries(kube, namespace), lambda c: c == [], what="canary Deployment gone")
    assert not stable["spec"].get("paused")
    assert keys.BATCH_RELEASE_CONTROL_ANNOTATION not in stable["metadata"].get("annotations", {})
    await eventually(
        lambda: _settled_by_image(kube, namespace), lambda c: c == ({V2: 5}, {V2: 5}), what="5 v2 pods only"
    )

    await kube.delete(r.BATCHRELEASE, "demo", namespace)
    await eventually(
        lambda: kube.get_or_none(r.BATCHRELEASE, "demo", namespace),
        lambda b: b is None,
        what="BatchRelease gone",
    )


async def test_partition_style_walks_batches_and_the_native_controller_adopts_the_new_replicaset(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    await _given_paused_v2(kube, namespace)
    await kube.create(r.BATCHRELEASE, _batch_release(namespace, "Partition", rolloutID="r1"))

    await _wait_batch_ready(kube, namespace, batch=0, updated=1)
    await eventually(
        lambda: _ready_by_image(kube, namespace), lambda c: c == {V1: 4, V2: 1}, what="4 v1 + 1 v2"
    )
    dep = await kube.get(r.DEPLOYMENT, "demo", namespace)
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert dep["metadata"]["labels"][keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL] == "true"
    strategy = dep["metadata"]["annotations"][keys.DEPLOYMENT_STRATEGY_ANNOTATION]
    rolling = '"rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}'
    assert strategy == '{"rollingStyle":"Partition",' + rolling + ',"partition":"20%"}'  # Go's JSON, exactly
    assert dep["status"]["updatedReplicas"] == 1  # written by the native controller from our ReplicaSet

    await _set_partition(kube, namespace, 1)
    await _wait_batch_ready(kube, namespace, batch=1, updated=4)  # 90% of 5, capped at replicas - 1
    await eventually(
        lambda: _ready_by_image(kube, namespace), lambda c: c == {V1: 1, V2: 4}, what="1 v1 + 4 v2"
    )
    v2_pods = [
        p
        for p in await _pods(kube, namespace)
        if _image(p) == V2 and not p["metadata"].get("deletionTimestamp")
    ]
    batch_ids = collections.Counter(p["metadata"]["labels"].get(keys.ROLLOUT_BATCH_ID_LABEL) for p in v2_pods)
    assert batch_ids == {"1": 1, "2": 3}
    assert all(p["metadata"]["labels"].get(keys.ROLLOUT_ID_LABEL) == "r1" for p in v2_pods)

    await _set_partition(kube, namespace, None)
    await _wait_completed(kube, namespace)
    dep = await kube.get(r.DEPLOYMENT, "demo", namespace)
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert not dep["spec"].get("paused")
    for key in (
        keys.DEPLOYMENT_STRATEGY_ANNOTATION,
        keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION,
        keys.BATCH_RELEASE_CONTROL_ANNOTATION,
    ):
        assert key not in dep["metadata"].get("annotations", {})
    assert keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL not in dep["metadata"].get("labels", {})
    await eventually(
        lambda: _settled_by_image(kube, namespace), lambda c: c == ({V2: 5}, {V2: 5}), what="5 v2 pods only"
    )
    replica_sets = (await kube.list(r.REPLICASET, namespace)).get("items") or []
    v2_sets = [rs for rs in replica_sets if _image(rs) == V2]
    assert len(v2_sets) == 1  # the native rollout continued from our ReplicaSet instead of creating one
    assert v2_sets[0]["metadata"]["name"] == f"demo-{template_revision(dep['spec']['template'])}"
    assert v2_sets[0]["spec"]["replicas"] == 5


async def test_a_deployment_set_up_as_kruise_documents_is_driven_without_the_controlled_by_label(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    """Issue 15, item 8: Kruise's advanced Deployment controller acts on the deployment-strategy and
    control-info annotations of a paused Recreate Deployment; graylane also wanted its own label."""
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=5, image=V1))
    await eventually(lambda: _ready_by_image(kube, namespace), lambda c: c == {V1: 5}, what="5 v1 pods")
    strategy = (
        '{"rollingStyle":"Partition","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"},"partition":2}'
    )
    control = (
        '{"apiVersion":"rollouts.kruise.io/v1beta1","kind":"BatchRelease","name":"demo","uid":"by-hand"}'
    )
    patch = {
        "metadata": {
            "annotations": {
                keys.DEPLOYMENT_STRATEGY_ANNOTATION: strategy,
                keys.BATCH_RELEASE_CONTROL_ANNOTATION: control,
            }
        },
        "spec": {
            "paused": True,
            "strategy": {"type": "Recreate", "rollingUpdate": None},
            **set_image_patch(V2)["spec"],
        },
    }
    await kube.patch(r.DEPLOYMENT, "demo", patch, namespace, patch_type="strategic")

    await eventually(
        lambda: _ready_by_image(kube, namespace),
        lambda c: c == {V1: 3, V2: 2},
        what="2 new pods (partition 2)",
    )
    dep = await kube.get(r.DEPLOYMENT, "demo", namespace)
    assert keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL not in (dep["metadata"].get("labels") or {})
    assert (
        '"updatedReadyReplicas":2' in dep["metadata"]["annotations"][keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION]
    )
