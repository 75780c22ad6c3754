"""The Deployment mutating webhook on the real cluster, served by the real `graylane controller` process.

A release (`kubectl set image`) of a Deployment that a Rollout manages must be held: the stored object is
paused, labelled with the stable revision and annotated in-progressing, and the Deployment controller
starts no new pods. Without a Rollout, or with a disabled one, the native rolling update goes ahead.
"""

from __future__ import annotations

import asyncio
import collections
import urllib.request
from typing import Any

import pytest

from graylane.bench.stats import parse_counter
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.webhook import install as inst
from tests.integration.builders import deployment, set_image_patch
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.waiting import eventually

Obj = dict[str, Any]
WORKLOAD_TYPE = "rollouts.kruise.io/workload-type"
STABLE_REVISION = "rollouts.kruise.io/stable-revision"
IN_PROGRESSING = "rollouts.kruise.io/in-progressing"
REPLICAS = 5
# How long a held Deployment is watched for pods the native rollout would have started.
QUIET_SECONDS = 5.0


@pytest.fixture
async def served_by_controller(kube: KubeClient, graylane_controller: ControllerProcess) -> ControllerProcess:
    """The session's controller, restarted if the Deployment webhook is configured to call someone else.

    Other modules of the session install an in-process webhook server under the same configuration
    name; the controller points the configuration back at itself when it starts.
    """
    if not await _points_at(kube, graylane_controller.webhook_port):
        await asyncio.to_thread(graylane_controller.stop)
        graylane_controller.start()
        await asyncio.to_thread(graylane_controller.wait_ready)
    await eventually(
        lambda: _points_at(kube, graylane_controller.webhook_port),
        bool,
        what="the webhook to call the controller",
    )
    return graylane_controller


async def _points_at(kube: KubeClient, port: int) -> bool:
    config = await kube.get_or_none(r.MUTATING_WEBHOOK, inst.MUTATING_CONFIGURATION)
    urls = [str(w.get("clientConfig", {}).get("url", "")) for w in (config or {}).get("webhooks", [])]
    return bool(urls) and all(f":{port}/" in url for url in urls)


def rollout(name: str, namespace: str, workload: str, *, disabled: bool = False) -> Obj:
    # Canary style (extra canary Deployment): whatever the controller does next, the held Deployment's
    # own ReplicaSets must not change.
    canary = {
        "enableExtraWorkloadForCanary": True,
        "steps": [{"replicas": 1, "pause": {}}, {"replicas": "100%"}],
    }
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload},
            "strategy": {"canary": canary},
            "disabled": disabled,
        },
    }


async def _ready_deployment(kube: KubeClient, namespace: str, name: str, labels: dict[str, str]) -> Obj:
    await kube.create(r.DEPLOYMENT, deployment(name, namespace, replicas=REPLICAS, labels=labels))
    return await eventually(
        lambda: kube.get(r.DEPLOYMENT, name, namespace),
        lambda d: (
            d.get("status", {}).get("readyReplicas") == REPLICAS
            and d["status"].get("updatedReplicas") == REPLICAS
        ),
        what=f"{REPLICAS} ready pods of {name}",
    )


async def _replica_sets(kube: KubeClient, namespace: str, uid: str) -> list[Obj]:
    listed = await kube.list(r.REPLICASET, namespace)
    return [
        rs
        for rs in listed.get("items", [])
        if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences", []))
    ]


async def _pods_with_image(
    kube: KubeClient, namespace: str, image: str, owners: set[str] | None = None
) -> int:
    """Pods running `image` (only those of the ReplicaSets with uids `owners`, when given)."""
    pods = (await kube.list(r.POD, namespace)).get("items", [])
    return sum(
        1
        for p in pods
        if p["spec"]["containers"][0]["image"] == image
        and (
            owners is None
            or any(ref.get("uid") in owners for ref in p["metadata"].get("ownerReferences", []))
        )
    )


async def _managed_and_ready(kube: KubeClient, namespace: str, name: str, rollout_obj: Obj) -> Obj:
    dep = await _ready_deployment(kube, namespace, name, {})
    await kube.create(r.ROLLOUT, rollout_obj)
    await eventually(
        lambda: kube.get(r.DEPLOYMENT, name, namespace),
        lambda d: WORKLOAD_TYPE in d["metadata"].get("labels", {}),
        what="the controller to label the Deployment with workload-type",
    )
    return dep


async def test_a_release_of_a_managed_deployment_is_held(
    kube: KubeClient, namespace: str, served_by_controller: ControllerProcess
) -> None:
    dep = await _managed_and_ready(kube, namespace, "web", rollout("ro", namespace, "web"))
    (old_rs,) = await _replica_sets(kube, namespace, dep["metadata"]["uid"])

    stored = await kube.patch(
        r.DEPLOYMENT, "web", set_image_patch("demo:v2"), namespace, patch_type="strategic"
    )

    assert stored["spec"]["paused"] is True
    assert stored["metadata"]["labels"][STABLE_REVISION] == old_rs["metadata"]["labels"]["pod-template-hash"]
    assert stored["metadata"]["annotations"][IN_PROGRESSING] == '{"rolloutName":"ro"}'
    await asyncio.sleep(QUIET_SECONDS)
    replica_sets = await _replica_sets(kube, namespace, dep["metadata"]["uid"])
    assert [rs["metadata"]["name"] for rs in replica_sets] == [old_rs["metadata"]["name"]]
    assert replica_sets[0]["spec"]["replicas"] == REPLICAS
    # The controller may already run canary pods in its own Deployment; the held one must start none.
    owners = {rs["metadata"]["uid"] for rs in replica_sets}
    assert await _pods_with_image(kube, namespace, "demo:v1", owners) == REPLICAS
    assert await _pods_with_image(kube, namespace, "demo:v2", owners) == 0


async def test_once_synced_the_webhook_answers_from_the_caches_without_listing(
    kube: KubeClient, namespace: str, served_by_controller: ControllerProcess
) -> None:
    await _managed_and_ready(kube, namespace, "web", rollout("ro", namespace, "web"))
    before = await asyncio.to_thread(_api_requests, served_by_controller)

    stored = await kube.patch(
        r.DEPLOYMENT, "web", set_image_patch("demo:v2"), namespace, patch_type="strategic"
    )
    after = await asyncio.to_thread(_api_requests, served_by_controller)

    # Held: the webhook found the Rollout and the stable ReplicaSet, from the informer caches.
    assert stored["spec"]["paused"] is True
    assert STABLE_REVISION in stored["metadata"]["labels"]
    # The controller's /metrics counts its requests; labelling the Deployment was one of them.
    assert before[("patch", "deployments")] >= 1
    assert after[("list", "rollouts")] == before[("list", "rollouts")]
    assert after[("list", "replicasets")] == before[("list", "replicasets")]


def _api_requests(controller: ControllerProcess) -> collections.Counter[tuple[str, ...]]:
    url = f"http://127.0.0.1:{controller.health_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return parse_counter(text, "graylane_api_requests_total", ("verb", "resource"))


async def test_a_held_deployment_cannot_be_unpaused_or_switched_to_recreate(
    kube: KubeClient, namespace: str, served_by_controller: ControllerProcess
) -> None:
    await _managed_and_ready(kube, namespace, "web", rollout("ro", namespace, "web"))
    await kube.patch(r.DEPLOYMENT, "web", set_image_patch("demo:v2"), namespace, patch_type="strategic")

    unpaused = await kube.patch(r.DEPLOYMENT, "web", {"spec": {"paused": False}}, namespace)
    recreate = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
    switched = await kube.patch(r.DEPLOYMENT, "web", recreate, namespace)

    assert unpaused["spec"]["paused"] is True
    assert switched["spec"]["strategy"]["type"] == "RollingUpdate"
    assert switched["spec"]["paused"] is True


async def test_a_labelled_deployment_without_a_rollout_updates_natively(
    kube: KubeClient, namespace: str, served_by_controller: ControllerProcess
) -> None:
    await _ready_deployment(kube, namespace, "web", {WORKLOAD_TYPE: "deployment"})

    stored = await kube.patch(
        r.DEPLOYMENT, "web", set_image_patch("demo:v2"), namespace, patch_type="strategic"
    )

    _assert_not_held(stored)
    await _rolled_out(kube, namespace, "web", "demo:v2")


async def test_a_disabled_rollout_does_not_hold_the_deployment(
    kube: KubeClient, namespace: str, served_by_controller: ControllerProcess
) -> None:
    await _managed_and_ready(kube, namespace, "web", rollout("ro", namespace, "web", disabled=True))
    await eventually(
        lambda: kube.get(r.ROLLOUT, "ro", namespace),
        lambda ro: ro.get("status", {}).get("phase") == "Disabled",
        what="the Rollout to reach phase Disabled",
    )

    stored = await kube.patch(
        r.DEPLOYMENT, "web", set_image_patch("demo:v2"), namespace, patch_type="strategic"
    )

    _assert_not_held(stored)
    await _rolled_out(kube, namespace, "web", "demo:v2")


def _assert_not_held(stored: Obj) -> None:
    assert stored["spec"].get("paused") is not True
    assert STABLE_REVISION not in stored["metadata"].get("labels", {})
    assert IN_PROGRESSING not in stored["metadata"].get("annotations", {})


async def _rolled_out(kube: KubeClient, namespace: str, name: str, image: str) -> None:
    await eventually(
        lambda: _pods_with_image(kube, namespace, image),
        lambda n: n >= REPLICAS,
        what=f"the native rolling update to start {REPLICAS} pods of {image}",
    )
