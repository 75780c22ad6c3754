"""Issue 15 item 9 on the real cluster: a Deployment scaled while a partition-style release pauses keeps
its new version's share of pods, as upstream's Deployment controller and Kruise's advanced Deployment
controller do (proportional scaling: every ReplicaSet is scaled by its share of the old size).

- A 40% step: 4 of 10 new pods scaled to 5 is 2 of 5 (graylane kept 4 new + 1 old), and back to 10 is
  4 of 10 again.
- An absolute step of 2: 2 of 5 scaled to 10 is 4 of 10 (graylane kept 2 new + 8 old), as Kruise does
  (the share is scaled; the partition only stops the new version from growing past it by itself), and
  back to 5 is 2 of 5.
In both, the Rollout's canaryReplicas follows, and the release then completes on approval.

Canary style (an extra canary Deployment) for comparison: the canary is sized from the stable
Deployment's replicas on every batch and only ever scaled up, as in Kruise: 40% of 5 is 2 canary pods,
of 10 is 4, and back at 5 the 4 stay.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")


def partition_rollout(first_step: int | str, **canary: Any) -> Obj:
    """A v1beta1 canary without enableExtraWorkloadForCanary: the partition style, by default."""
    steps = [{"replicas": first_step, "pause": {}}, {"replicas": "100%"}]
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": {"steps": steps, **canary}},
        },
    }


async def when_scaled(rel: Release, replicas: int) -> None:
    """`kubectl scale deployment demo --replicas=N` (a patch of spec.replicas, as an HPA would do)."""
    await rel.kube.patch(r.DEPLOYMENT, rel.name, {"spec": {"replicas": replicas}}, rel.namespace)


async def then_canary_replicas(rel: Release, new: int) -> None:
    def counted(ro: Obj) -> bool:
        return bool((ro.get("status", {}).get("canaryStatus") or {}).get("canaryReplicas") == new)

    await eventually(rel.rollout, counted, what=f"Rollout canaryReplicas {new}")
    # Still the same pause: the scale re-ran the batch, it did not move the release on.
    ro = await rel.then_paused_at(1)
    assert ro["status"]["canaryStatus"]["nextStepIndex"] == 2


async def then_shares(rel: Release, old: int, new: int) -> None:
    """The pods of each version, the Deployment's updated count and the Rollout's canaryReplicas agree."""
    await rel.then_pods({V1: old, V2: new}, what=f"{old} {V1} + {new} {V2} pods", timeout=120)

    def settled(dep: Obj) -> bool:
        st = dep.get("status", {})
        return bool(st.get("replicas") == old + new and st.get("updatedReplicas") == new)

    await eventually(rel.deployment, settled, what=f"Deployment status: {old + new} pods, {new} updated")
    await then_canary_replicas(rel, new)


@pytest.mark.parametrize(
    ("step", "start", "scaled", "shares"),
    [
        # A percentage: the share is the step's own.
        pytest.param("40%", 10, 5, [(6, 4), (3, 2), (6, 4)], id="40%-10-to-5-and-back"),
        # An absolute step: scaled by its share too, as Kruise's advanced controller does.
        pytest.param(2, 5, 10, [(3, 2), (6, 4), (3, 2)], id="2-pods-5-to-10-and-back"),
    ],
)
async def test_scaling_at_a_pause_keeps_the_new_versions_share(
    kube: KubeClient,
    namespace: str,
    step: Any,
    start: int,
    scaled: int,
    shares: list[tuple[int, int]],
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=start)
    await rel.given_rollout(partition_rollout(step))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await then_shares(rel, *shares[0])

    await when_scaled(rel, scaled)
    await then_shares(rel, *shares[1])

    await when_scaled(rel, start)
    await then_shares(rel, *shares[2])

    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: start}, what=f"{start} {V2} pods after the release", timeout=120)


async def test_canary_style_sizes_the_canary_from_the_stable_replicas_and_never_scales_it_down(
    kube: KubeClient, namespace: str
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(partition_rollout("40%", enableExtraWorkloadForCanary=True))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 2}, what="2 canary pods beside 5 stable ones")

    await when_scaled(rel, 10)
    await rel.then_pods({V1: 10, V2: 4}, what="4 canary pods beside 10 stable ones", timeout=120)
    await then_canary_replicas(rel, 4)

    await when_scaled(rel, 5)
    await rel.then_pods({V1: 5, V2: 4}, what="the 4 canary pods kept beside 5 stable ones", timeout=120)
    await then_canary_replicas(rel, 4)

    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what=f"5 {V2} pods after the release", timeout=120)
