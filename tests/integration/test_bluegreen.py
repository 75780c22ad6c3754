"""Issue 17 acceptance on the real local cluster: blue-green releases of a Deployment.

A Deployment of 5 replicas behind a Service and an nginx Ingress, with an HPA, released in two
steps (50% pods + 0% traffic, then 100% pods + 100% traffic). The pods are counted as a user would;
the objects are read back as Kruise users read them. Requests through real gateways are measured by
tests/traffic/test_bluegreen_traffic.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.batchrelease.bluegreen_style import MAX_PROGRESS_SECONDS, MAX_READY_SECONDS
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.builders import deployment
from tests.integration.release_dsl import V1, V2, V3, Release
from tests.integration.traffic_fixtures import ingress, nginx_annotations, service
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")

ORIGINAL = "rollouts.kruise.io/original-deployment-strategy"
CONTROL_INFO = "batchrelease.rollouts.kruise.io/control-info"
IN_PROGRESSING = "rollouts.kruise.io/in-progressing"
STABLE_REVISION = "rollouts.kruise.io/stable-revision"
STEPS: list[dict[str, Any]] = [
    {"replicas": "50%", "traffic": "0%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]


def blue_green_rollout(steps: list[dict[str, Any]] | None = None, *, traffic: bool = True) -> Obj:
    body: dict[str, Any] = {"steps": steps or STEPS}
    if traffic:
        body["trafficRoutings"] = [{"service": "web", "gracePeriodSeconds": 1, "ingress": {"name": "web"}}]
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"blueGreen": body},
        },
    }


def hpa(namespace: str) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "minReplicas": 5,
            "maxReplicas": 10,
        },
    }


class BlueGreen(Release):
    """The release DSL plus what a blue-green release shows: its HPA, Services and canary Ingress."""

    async def given_app(self, *, min_ready: int = 0, traffic: bool = True) -> Obj:
        dep = deployment(self.name, self.namespace, replicas=5, image=V1)
        dep["spec"]["minReadySeconds"] = min_ready
        await self.kube.create(r.DEPLOYMENT, dep)
        await self.then_pods({V1: 5}, what="5 v1 pods")
        await self.kube.create(r.SERVICE, service(self.namespace))
        await self.kube.create(r.INGRESS, ingress(self.namespace))
        await self.kube.create(r.HPA, hpa(self.namespace))
        await self.given_rollout(blue_green_rollout(traffic=traffic))
        return await self.deployment()

    async def hpa_target(self) -> str:
        found = await self.kube.get(r.HPA, "demo", self.namespace)
        return str(found["spec"]["scaleTargetRef"]["name"])

    async def canary_weight(self) -> str | None:
        found = await self.kube.get_or_none(r.INGRESS, "web-canary", self.namespace)
        return nginx_annotations(found).get("canary-weight") if found is not None else None

    async def selector(self, name: str) -> dict[str, str] | None:
        found = await self.kube.get_or_none(r.SERVICE, name, self.namespace)
        return dict(found["spec"]["selector"]) if found is not None else None

    async def then_pods_with(self, image: str, *, what: str, timeout: float = 90) -> None:
        await eventually(self.pod_images, lambda seen: seen.get(image, 0) > 0, what=what, timeout=timeout)

    async def then_handed_back(self, before: Obj, image: str, timeout: float = 120) -> None:
        """The workload exactly as the user left it (but for the image), the HPA back, nothing of ours.

        Waited for as a whole: a completed status seen early may still be the previous release's."""
        await self.then_pods({image: 5}, what=f"5 {image} pods and nothing else", timeout=timeout)
        left = await eventually(
            lambda: self.left_behind(before),
            lambda found: not found,
            what="nothing left behind",
            timeout=timeout,
        )
        assert left == []

    async def left_behind(self, before: Obj) -> list[str]:
        found: list[str] = []
        dep = await self.deployment()
        ours = {ORIGINAL, CONTROL_INFO, IN_PROGRESSING} & set(dep["metadata"].get("annotations") or {})
        found += [f"annotation {key}" for key in sorted(ours)]
        for field in ("strategy", "minReadySeconds", "progressDeadlineSeconds", "paused"):
            if dep["spec"].get(field) != before["spec"].get(field):
                found.append(f"spec.{field} {dep['spec'].get(field)!r}")
        if STABLE_REVISION in (dep["metadata"].get("labels") or {}):
            found.append("stable-revision label")
        if await self.hpa_target() != "demo":
            found.append("HPA still disabled")
        if await self.selector("web") != {"app": "demo"}:
            found.append(f"stable Service selector {await self.selector('web')}")
        if await self.selector("web-canary") is not None:
            found.append("canary Service")
        if await self.kube.get_or_none(r.INGRESS, "web-canary", self.namespace) is not None:
            found.append("canary Ingress")
        if await self.kube.get_or_none(r.BATCHRELEASE, "demo", self.namespace) is not None:
            found.append("BatchRelease")
        replica_sets = await self.kube.list(r.REPLICASET, self.namespace, label_selector="app=demo")
        held = [
            rs for rs in replica_sets["items"] if rs["spec"].get("minReadySeconds", 0) == MAX_READY_SECONDS
        ]
        found += [f"ReplicaSet {rs['metadata']['name']} held" for rs in held]
        return found


async def _released_to_step_one(kube: KubeClient, namespace: str) -> tuple[BlueGreen, Obj]:
    rel = BlueGreen(kube, namespace, sub="blueGreenStatus")
    before = await rel.given_app(min_ready=1)
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    # 50% of 5 rounds up to 3 new pods, beside all 5 old ones.
    await rel.then_pods({V1: 5, V2: 3}, what="step 1: 5 old + 3 new pods")
    return rel, before


async def test_a_blue_green_release_switches_traffic_and_restores_the_workload(
    kube: KubeClient, namespace: str
) -> None:
    rel, before = await _released_to_step_one(kube, namespace)
    dep = await rel.deployment()
    assert dep["spec"]["minReadySeconds"] == MAX_READY_SECONDS
    assert dep["spec"]["progressDeadlineSeconds"] == MAX_PROGRESS_SECONDS
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "50%", "maxUnavailable": 0}
    assert dep["metadata"]["annotations"][ORIGINAL] == (
        '{"maxUnavailable":"25%","maxSurge":"25%","minReadySeconds":1,"progressDeadlineSeconds":600}'
    )
    assert await rel.hpa_target() == "demo-DisableByRollout"
    ro = await rel.rollout()
    sub = ro["status"]["blueGreenStatus"]
    assert "canaryStatus" not in ro["status"]
    assert (sub["updatedReplicas"], sub["updatedReadyReplicas"]) == (3, 3)
    # The stable Service selects the old pods only; the canary Service the new ones; no traffic moved.
    assert await rel.selector("web") == {"app": "demo", "pod-template-hash": sub["stableRevision"]}
    assert await rel.selector("web-canary") == {"app": "demo", "pod-template-hash": sub["podTemplateHash"]}
    assert await rel.canary_weight() == "0"

    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 5, V2: 5}, what="step 2: 5 old + 5 new pods")
    assert await rel.canary_weight() == "100"
    await rel.then_pods({V1: 5, V2: 5}, what="the old pods are still there at the last step")

    await rel.when_approved()
    await rel.then_completed()
    await rel.then_handed_back(before, V2)


@pytest.mark.parametrize("step", [1, 2])
async def test_rollback_at_each_step_returns_to_the_old_pods(
    kube: KubeClient, namespace: str, step: int
) -> None:
    rel, before = await _released_to_step_one(kube, namespace)
    if step == 2:
        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.then_pods({V1: 5, V2: 5}, what="step 2: 5 old + 5 new pods")

    await rel.when_image(V1)

    await rel.then_completed(succeeded=False)
    await rel.then_handed_back(before, V1)


@pytest.mark.parametrize("how", ["disabled", "deleted"])
async def test_disabling_or_deleting_mid_way_hands_the_release_to_the_deployment(
    kube: KubeClient, namespace: str, how: str
) -> None:
    rel, before = await _released_to_step_one(kube, namespace)

    if how == "disabled":
        await rel.when_rollout_patched({"spec": {"disabled": True}})
        await eventually(rel.rollout, lambda ro: ro["status"].get("phase") == "Disabled", what="Disabled")
    else:
        await kube.delete(r.ROLLOUT, "demo", namespace)
        await eventually(
            lambda: kube.get_or_none(r.ROLLOUT, "demo", namespace), lambda ro: ro is None, what="Rollout gone"
        )

    # Kruise's Deleting/Disabled order: the native rolling update completes the release to v2.
    await rel.then_handed_back(before, V2)


async def test_a_third_version_mid_release_is_refused_until_rolled_back(
    kube: KubeClient, namespace: str
) -> None:
    rel, before = await _released_to_step_one(kube, namespace)

    await rel.when_image(V3)

    ro = await eventually(
        rel.rollout,
        lambda ro: (
            ro["status"].get("message")
            == "new version releasing detected in the progress of blue-green release, please rollback first"
        ),
        what="the continuous release refused",
    )
    assert ro["status"]["blueGreenStatus"]["currentStepState"] == "StepPaused"
    await rel.then_pods({V1: 5, V2: 3}, what="no v3 pod, no pod scaled down")

    await rel.when_image(V1)  # roll back, as the message says
    await rel.then_completed(succeeded=False)
    await rel.then_handed_back(before, V1)


async def test_a_release_without_traffic_routing_still_keeps_both_versions(
    kube: KubeClient, namespace: str
) -> None:
    rel = BlueGreen(kube, namespace, sub="blueGreenStatus")
    before = await rel.given_app(traffic=False)
    steps = copy.deepcopy(STEPS)
    for step in steps:
        step.pop("traffic")
    await rel.when_rollout_patched({"spec": {"strategy": {"blueGreen": {"steps": steps}}}})
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 3}, what="step 1: 5 old + 3 new pods")
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.when_approved()
    await rel.then_completed()
    await rel.then_handed_back(before, V2)


async def test_undo_fast_moves_traffic_back_and_keeps_every_pod(kube: KubeClient, namespace: str) -> None:
    """kubectl-kruise's `rollout undo --fast`: back to the latest earlier step without traffic; the
    new pods stay (a lower step never scales pods down), every request goes to the old ones."""
    from graylane.cli import ops

    rel, before = await _released_to_step_one(kube, namespace)
    await rel.when_approved()
    await rel.then_paused_at(2)
    await eventually(rel.canary_weight, lambda w: w == "100", what="100% on the new pods")

    said = await ops.undo(kube, namespace, "demo", fast=True)

    assert "nextStepIndex 1" in said
    await rel.then_paused_at(1)
    await eventually(rel.canary_weight, lambda w: w == "0", what="traffic back on the old pods")
    await rel.then_pods({V1: 5, V2: 5}, what="no pod scaled down by the jump back")
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.when_approved()
    await rel.then_completed()
    await rel.then_handed_back(before, V2)
