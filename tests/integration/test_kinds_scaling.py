"""Issue 16 acceptance, the scaling cases the kinds' own files leave out: scaling a CloneSet in and a
StatefulSet (native and Advanced) out at a pause keeps the batch arithmetic Kruise has.

- CloneSet, 4 -> 2 at the 50% step: the partition is the step's percentage ("50%" of the old pods), so
  one pod of each revision (the CloneSet removes the old pods beyond the partition first; the driver
  plays that, kruise_driver.py).
- StatefulSet, 4 -> 6 at the 50% step: the partition (an ordinal) is never raised, by Kruise as by
  graylane ("pods are only ever added"), and the two new ordinals are above it, so 4 of 6 pods are new;
  the batch counts them as done (4 >= 3) and the release completes on approval.
(The CloneSet scale-out and the StatefulSet scale-in are in test_kinds_cloneset.py and
test_kinds_statefulset.py; a DaemonSet has no replicas to scale.)
"""

from __future__ import annotations

import pytest

from graylane.api.workloads import ADVANCED_STATEFULSET, CLONESET, STATEFULSET, WorkloadKind
from graylane.kube.client import KubeClient
from tests.integration.kinds_fixtures import V1, V2, KindRelease, openkruise_crds
from tests.integration.waiting import eventually

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")


async def _canary_replicas(rel: KindRelease, new: int) -> None:
    await eventually(
        rel.rollout,
        lambda ro: (ro.get("status", {}).get("canaryStatus") or {}).get("canaryReplicas") == new,
        what=f"Rollout canaryReplicas {new}",
    )


async def test_scaling_a_cloneset_in_mid_release_keeps_the_batch_arithmetic(
    kube: KubeClient, namespace: str
) -> None:
    rel = KindRelease(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 2, V2: 2}, what="step 2 with 4 replicas")

        await rel.when_scaled(2)

        await rel.then_pods({V1: 1, V2: 1}, what="step 2 with 2 replicas: 50% of them new")
        await _canary_replicas(rel, 1)
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_released({V2: 2}, what="released on 2 replicas")


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(STATEFULSET, id="StatefulSet"),
        pytest.param(ADVANCED_STATEFULSET, id="AdvancedStatefulSet"),
    ],
)
async def test_scaling_a_statefulset_out_mid_release_keeps_the_partition(
    kube: KubeClient, namespace: str, kind: WorkloadKind
) -> None:
    rel = KindRelease(kube, namespace, kind, replicas=4)
    async with rel.controller():
        await rel.given_paused_at_step_two({V1: 2, V2: 2}, what="step 2 with 4 replicas")

        await rel.when_scaled(6)

        # Ordinals 4 and 5 are above the partition (2): created on the new revision; 2 is not raised.
        await rel.then_pods({V1: 2, V2: 4}, what="ordinals 2-5 new, 0-1 old")
        await _canary_replicas(rel, 4)
        workload = await rel.workload()
        assert workload["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 2
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_released({V2: 6}, what="released on 6 replicas")
