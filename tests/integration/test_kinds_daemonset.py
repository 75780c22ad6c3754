"""Issue 16 acceptance, DaemonSet family: native DaemonSet (the cluster's own controller, released as Kruise
master does it: OnDelete, the partition in an annotation, graylane deleting old pods batch by batch) and
Advanced DaemonSet (OpenKruise's CRD, its controller played by kruise_driver.py as recorded).

A DaemonSet's pods are its nodes' (three kwok nodes here), so the 3-step release (1 pod + pause, 50% +
pause, 100%) holds 1, then 2, then 3 pods on the new revision; each batch's pods carry the rollout id and
batch id; the release survives a controller restart at a pause, completes on approval and leaves the
update strategy as it was, with no annotation or BatchRelease of ours; a rollback mid-way brings every
pod back to the old revision.
"""

from __future__ import annotations

import pytest

from graylane.api import keys
from graylane.api.workloads import ADVANCED_DAEMONSET, DAEMONSET, WorkloadKind
from graylane.kube.client import KubeClient
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.kinds_fixtures import V1, V2, KindRelease, openkruise_crds

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")
KINDS = [pytest.param(DAEMONSET, id="DaemonSet"), pytest.param(ADVANCED_DAEMONSET, id="AdvancedDaemonSet")]


@pytest.mark.parametrize("kind", KINDS)
async def test_three_steps_with_a_restart_at_a_pause(
    kube: KubeClient, namespace: str, kind: WorkloadKind, graylane_controller: ControllerProcess
) -> None:
    rel = KindRelease(kube, namespace, kind)
    async with rel.controller():
        await rel.given_workload()
        await rel.given_rollout()
        await rel.when_image(V2)

        await rel.then_paused_at(1)
        await rel.then_pods({V1: 2, V2: 1}, what="step 1: one node's pod on the new revision")
        assert await rel.batch_labels(V2) == {"1": 1}
        annotations = (await rel.workload())["metadata"]["annotations"]
        assert keys.IN_PROGRESSING_ANNOTATION in annotations
        assert annotations.get(keys.DAEMONSET_STABLE_REVISION_ANNOTATION)

        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.then_pods({V1: 1, V2: 2}, what="step 2: 50% of 3 nodes, rounded up")
        assert await rel.batch_labels(V2) == {"1": 1, "2": 1}

        await rel.when_restarted_at_step_two(graylane_controller, {V1: 1, V2: 2})

        await rel.when_approved()
        await rel.then_released({V2: 3}, what="every node's pod on the new revision")


@pytest.mark.parametrize("kind", KINDS)
async def test_rollback_mid_way_brings_every_pod_back(
    kube: KubeClient, namespace: str, kind: WorkloadKind
) -> None:
    rel = KindRelease(kube, namespace, kind)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 1, V2: 2}, what="step 2 before the rollback")

        await rel.when_image(V1)

        await rel.then_released({V1: 3}, what="every pod back on the old revision", succeeded=False)
