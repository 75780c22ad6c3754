"""Issue 16 acceptance, StatefulSet family: native StatefulSet (the cluster's own controller) and Advanced
StatefulSet (OpenKruise's CRD, its controller played by kruise_driver.py as recorded).

A 3-step release (1 pod + pause, 50% + pause, 100%) holds exactly the step's pods on the new revision at
each pause (the highest ordinals: the partition counts old pods), labels each batch's pods with the
rollout id and batch id, survives a controller restart at a pause, completes on approval and leaves no
partition, annotation or BatchRelease behind; a rollback mid-way brings every pod back to the old
revision; scaling in mid-release keeps the batch arithmetic (50% of the new replicas).
"""

from __future__ import annotations

import pytest

from graylane.api import keys
from graylane.api.workloads import ADVANCED_STATEFULSET, STATEFULSET, WorkloadKind
from graylane.kube.client import KubeClient
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.kinds_fixtures import V1, V2, KindRelease, openkruise_crds, rollout

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")
KINDS = [
    pytest.param(STATEFULSET, id="StatefulSet"),
    pytest.param(ADVANCED_STATEFULSET, id="AdvancedStatefulSet"),
]


def _ordinals(pods: list[dict[str, object]], image: str) -> list[int]:
    return sorted(
        int(str(p["metadata"]["name"]).rpartition("-")[2])  # type: ignore[index]
        for p in pods
        if p["spec"]["containers"][0]["image"] == image  # type: ignore[index]
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_three_steps_with_a_restart_at_a_pause(
    kube: KubeClient, namespace: str, kind: WorkloadKind, graylane_controller: ControllerProcess
) -> None:
    rel = KindRelease(kube, namespace, kind, replicas=4)
    async with rel.controller():
        await rel.given_workload()
        await rel.given_rollout()
        await rel.when_image(V2)

        await rel.then_paused_at(1)
        await rel.then_pods({V1: 3, V2: 1}, what="step 1: one pod on the new revision")
        assert _ordinals(await rel.pods(), V2) == [3]
        assert await rel.batch_labels(V2) == {"1": 1}
        workload = await rel.workload()
        assert workload["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 3
        assert keys.IN_PROGRESSING_ANNOTATION in workload["metadata"]["annotations"]

        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.then_pods({V1: 2, V2: 2}, what="step 2: 50% on the new revision")
        assert _ordinals(await rel.pods(), V2) == [2, 3]
        assert await rel.batch_labels(V2) == {"1": 1, "2": 1}

        await rel.when_restarted_at_step_two(graylane_controller, {V1: 2, V2: 2})

        await rel.when_approved()
        ro = await rel.then_released({V2: 4}, what="every pod on the new revision")
    assert ro["status"]["canaryStatus"]["currentStepIndex"] == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_rollback_mid_way_brings_every_pod_back(
    kube: KubeClient, namespace: str, kind: WorkloadKind
) -> None:
    rel = KindRelease(kube, namespace, kind, replicas=4)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 2, V2: 2}, what="step 2 before the rollback")

        await rel.when_image(V1)

        await rel.then_released({V1: 4}, what="every pod back on the old revision", succeeded=False)


@pytest.mark.parametrize("kind", KINDS)
async def test_scaling_in_mid_release_keeps_the_batch_arithmetic(
    kube: KubeClient, namespace: str, kind: WorkloadKind
) -> None:
    rel = KindRelease(kube, namespace, kind, replicas=4)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 2, V2: 2}, what="step 2 with 4 replicas")

        await rel.when_scaled(2)

        # 50% of 2 replicas: one pod on each revision (the StatefulSet removed ordinals 2 and 3, both new).
        await rel.then_pods({V1: 1, V2: 1}, what="step 2 with 2 replicas")
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_released({V2: 2}, what="released on 2 replicas")


@pytest.mark.parametrize("kind", KINDS)
async def test_rollback_in_batches(kube: KubeClient, namespace: str, kind: WorkloadKind) -> None:
    """Kruise's rollouts.kruise.io/rollback-in-batch: the way back is released through the steps; the
    ordinals already on the old revision need no update and stay below the partition."""
    rel = KindRelease(kube, namespace, kind, replicas=4)
    body = rollout(kind, rel.name)
    body["metadata"]["annotations"] = {keys.ROLLBACK_IN_BATCH_ANNOTATION: "true"}
    async with rel.controller():
        await rel.given_paused_at_step_two(
            {V1: 2, V2: 2}, what="step 2 before the rollback: ordinals 2 and 3 new", rollout_body=body
        )

        await rel.when_image(V1)

        await rel.then_paused_at(1)
        await rel.then_pods({V1: 3, V2: 1}, what="the way back, step 1: ordinal 3 first")
        assert _ordinals(await rel.pods(), V2) == [2]
        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_released({V1: 4}, what="every pod back on v1, in batches")
