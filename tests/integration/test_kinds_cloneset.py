"""Issue 16 acceptance, CloneSet: OpenKruise's CRD (the API server validates every field graylane writes),
its controller played by kruise_driver.py as kruise-manager v1.9.0 was recorded doing.

A 3-step release (1 pod + pause, 50% + pause, 100%) writes the partition Kruise Rollout writes ("100%",
then the old pods as a percentage) and holds exactly the step's pods on the new revision at each pause,
labels each batch's pods, survives a controller restart at a pause, completes on approval and leaves no
partition, annotation or BatchRelease behind; a rollback mid-way brings every pod back; scaling out
mid-release keeps the batch arithmetic (50% of the new replicas); canary style asked of a CloneSet falls
back to partition style, as in Kruise (no extra workload is made).
"""

from __future__ import annotations

import pytest

from graylane.api import keys
from graylane.api.workloads import CLONESET
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.kinds_fixtures import V1, V2, KindRelease, openkruise_crds, rollout

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")


async def test_three_steps_with_a_restart_at_a_pause(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    rel = KindRelease(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        await rel.given_workload()
        await rel.given_rollout()
        await rel.when_image(V2)

        await rel.then_paused_at(1)
        await rel.then_pods({V1: 3, V2: 1}, what="step 1: one pod on the new revision")
        assert await rel.batch_labels(V2) == {"1": 1}
        assert (await rel.workload())["spec"]["updateStrategy"]["partition"] == 3

        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.then_pods({V1: 2, V2: 2}, what="step 2: 50% on the new revision")
        assert await rel.batch_labels(V2) == {"1": 1, "2": 1}
        assert (await rel.workload())["spec"]["updateStrategy"]["partition"] == "50%"

        await rel.when_restarted_at_step_two(graylane_controller, {V1: 2, V2: 2})

        await rel.when_approved()
        await rel.then_released({V2: 4}, what="every pod on the new revision")


async def test_rollback_mid_way_brings_every_pod_back(kube: KubeClient, namespace: str) -> None:
    rel = KindRelease(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 2, V2: 2}, what="step 2 before the rollback")

        await rel.when_image(V1)

        await rel.then_released({V1: 4}, what="every pod back on the old revision", succeeded=False)


async def test_scaling_out_mid_release_keeps_the_batch_arithmetic(kube: KubeClient, namespace: str) -> None:
    rel = KindRelease(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 2, V2: 2}, what="step 2 with 4 replicas")

        await rel.when_scaled(6)

        await rel.then_pods({V1: 3, V2: 3}, what="step 2 with 6 replicas: 50% of them new")
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_released({V2: 6}, what="released on 6 replicas")


async def test_canary_style_falls_back_to_partition_style(kube: KubeClient, namespace: str) -> None:
    rel = KindRelease(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        await rel.given_workload()
        await rel.given_rollout(rollout(CLONESET, rel.name, enableExtraWorkloadForCanary=True))
        await rel.when_image(V2)

        await rel.then_paused_at(1)
        await rel.then_pods({V1: 3, V2: 1}, what="step 1 in the CloneSet itself")
        assert (await rel.workload())["spec"]["updateStrategy"]["partition"] == 3
        deployments = await kube.list(r.DEPLOYMENT, namespace)
        assert deployments["items"] == []  # no canary workload
        br = await kube.get(r.BATCHRELEASE, rel.name, namespace)
        assert br["spec"]["releasePlan"]["rollingStyle"] == "Canary"  # as Kruise writes it
        annotations = (await rel.workload())["metadata"]["annotations"]
        assert keys.BATCH_RELEASE_CONTROL_ANNOTATION in annotations


async def test_rollback_in_batches(kube: KubeClient, namespace: str) -> None:
    """Kruise's rollouts.kruise.io/rollback-in-batch: the way back is released through the steps, the
    pods already on the old revision labelled no-need-update and left out of the batches."""
    rel = KindRelease(kube, namespace, CLONESET, replicas=4)
    body = rollout(CLONESET, rel.name)
    body["metadata"]["annotations"] = {keys.ROLLBACK_IN_BATCH_ANNOTATION: "true"}
    async with rel.controller():
        await rel.given_paused_at_step_two(
            {V1: 2, V2: 2}, what="step 2 before the rollback", rollout_body=body
        )
        untouched = {
            p["metadata"]["name"] for p in await rel.pods() if p["spec"]["containers"][0]["image"] == V1
        }

        await rel.when_image(V1)

        # Step 1 of the way back: 1 of the 2 pods that need it (4 - 2 already on v1).
        await rel.then_paused_at(1)
        await rel.then_pods({V1: 3, V2: 1}, what="the way back, step 1")
        marked = {
            p["metadata"]["name"]
            for p in await rel.pods()
            if keys.NO_NEED_UPDATE_POD_LABEL in (p["metadata"].get("labels") or {})
        }
        assert marked == untouched
        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_released({V1: 4}, what="every pod back on v1, in batches")
