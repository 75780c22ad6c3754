"""Argo CD's health verdicts on graylane's Rollout statuses (issue 15: the Argo CD health table).

Argo CD's shipped check for rollouts.kruise.io/Rollout (tests/data/argocd_kruise_rollout_health.yaml,
facts read from Argo CD, evaluated by tests/argocd_health.py) is applied to graylane's status at each
point of a release, a pause, a completion, a rollback and a disable, read as v1beta1 and as v1alpha1.
Each expected verdict is the one Kruise's status at that point gets (reference §2): Kruise writes the
same phase, step state and observedGeneration there.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.argocd_health import verdict
from tests.integration.release_dsl import V1, V2, V3, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")

HEALTHY = ("Healthy", "Rollout is Completed")
SUSPENDED = ("Suspended", "Rollout is Paused need manual intervention")
PROGRESSING = ("Progressing", "Rollout is still progressing")
DEGRADED = ("Degraded", "Rollout is Disabled or Terminating")


def _rollout() -> dict[str, Any]:
    steps = [{"replicas": 1, "pause": {}}, {"replicas": 3, "pause": {}}, {"replicas": "100%"}]
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": {"enableExtraWorkloadForCanary": True, "steps": steps}},
        },
    }


class Argo:
    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace

    async def both(self) -> tuple[Obj, Obj]:
        beta = await self.kube.get(r.ROLLOUT, "demo", self.namespace)
        alpha = await self.kube.get(r.ROLLOUT_V1ALPHA1, "demo", self.namespace)
        return beta, alpha

    async def then(self, want: tuple[str, str], what: str, *, timeout: float = 120) -> Obj:
        """Wait until both views settle on `want` (the verdict Kruise's status gets at this point)."""

        def settled(views: tuple[Obj, Obj]) -> bool:
            return all(verdict(view) == want for view in views)

        beta, _ = await eventually(self.both, settled, what=f"Argo CD {want[0]} ({what})", timeout=timeout)
        return beta


async def test_verdicts_through_release_pause_completion_rollback_and_disable(
    kube: KubeClient, namespace: str
) -> None:
    rel, argo = Release(kube, namespace), Argo(kube, namespace)
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(_rollout())
    await argo.then(HEALTHY, "first deploy completed")

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await argo.then(SUSPENDED, "paused at step 1 for approval")

    # spec.strategy.paused: the generation moves; once observed the step is still paused.
    await rel.when_rollout_patched({"spec": {"strategy": {"paused": True}}})
    ro = await argo.then(SUSPENDED, "paused by spec while paused at a step")
    assert ro["status"]["observedGeneration"] == ro["metadata"]["generation"]
    await rel.when_rollout_patched({"spec": {"strategy": {"paused": False}}})

    await rel.when_approved()
    await rel.then_paused_at(2)
    await argo.then(SUSPENDED, "paused at step 2")
    await rel.when_approved()
    await rel.then_completed()
    await argo.then(HEALTHY, "release completed")

    await rel.when_image(V3)
    await rel.then_paused_at(1)
    await argo.then(SUSPENDED, "the next release paused at step 1")
    await rel.when_image(V2)  # rollback to the stable template
    ro = await rel.then_completed(succeeded=False)
    # Kruise leaves the step state of a cancelled release as it was, so Argo CD keeps saying Progressing.
    assert ro["status"]["canaryStatus"]["currentStepState"] == "StepPaused"
    await argo.then(PROGRESSING, "after the rollback")
    await rel.then_pods({V2: 3}, what="3 pods of the stable version")

    await rel.when_rollout_patched({"spec": {"disabled": True}})
    ro = await argo.then(DEGRADED, "disabled")
    assert ro["status"]["phase"] == "Disabled"
    assert V1 not in await rel.pod_images()
