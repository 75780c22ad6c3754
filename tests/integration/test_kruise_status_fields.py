"""Status fields Kruise fills that users' tooling reads (issue 15, items 1, 3 and 4).

Each test failed on the code before this change: the first-deploy sub-status had an empty
stableRevision, podTemplateHash set and nextStepIndex 0; pods of a release without a rollout-id label
were not labelled; observedWorkloadGeneration did not follow a scale of a Healthy Rollout's workload.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")

ROLLOUT_ID = "rollouts.kruise.io/rollout-id"
BATCH_ID = "rollouts.kruise.io/rollout-batch-id"


def _rollout(*, extra_workload: bool) -> dict[str, Any]:
    canary: dict[str, Any] = {"steps": [{"replicas": 1, "pause": {}}, {"replicas": 3, "pause": {}}]}
    if extra_workload:
        canary["enableExtraWorkloadForCanary"] = True
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
    }


async def _replica_set_hashes(kube: KubeClient, namespace: str) -> set[str]:
    listed = await kube.list(r.REPLICASET, namespace, label_selector="app=demo")
    return {rs["metadata"]["labels"]["pod-template-hash"] for rs in listed["items"]}


async def test_first_deploy_reports_the_stable_revision_like_kruise(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(_rollout(extra_workload=True))

    [stable_hash] = await _replica_set_hashes(kube, namespace)
    ro = await rel.rollout()
    sub = ro["status"]["canaryStatus"]
    assert ro["status"]["phase"] == "Healthy"
    assert ro["status"]["message"] == "workload deployment is completed"
    assert sub["stableRevision"] == stable_hash
    assert sub["canaryRevision"] == stable_hash  # Kruise's ComputeHash of the same template
    assert sub["podTemplateHash"] == ""
    assert sub["nextStepIndex"] == -1
    assert sub["currentStepIndex"] == 2
    # No rollout-id label on the workload: the id is the canary revision.
    assert sub["observedRolloutID"] == stable_hash
    alpha = await kube.get(r.ROLLOUT_V1ALPHA1, "demo", namespace)
    assert alpha["status"]["canaryStatus"]["observedRolloutID"] == stable_hash


async def test_pods_of_each_batch_carry_the_default_rollout_id(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(_rollout(extra_workload=False))

    await rel.when_image(V2)
    ro = await rel.then_paused_at(1)
    revision = ro["status"]["canaryStatus"]["canaryRevision"]
    assert revision in await _replica_set_hashes(kube, namespace)
    assert ro["status"]["canaryStatus"]["observedRolloutID"] == revision
    await _then_labels(rel, revision, {"1": 1})

    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 2, V2: 3}, what="3 new pods at step 2")
    await _then_labels(rel, revision, {"1": 1, "2": 2})


async def _then_labels(rel: Release, rollout_id: str, batches: dict[str, int]) -> None:
    def counts(pods: list[Obj]) -> dict[str, int]:
        seen: dict[str, int] = {}
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            if pod["spec"]["containers"][0]["image"] == V2 and labels.get(ROLLOUT_ID) == rollout_id:
                seen[labels.get(BATCH_ID, "")] = seen.get(labels.get(BATCH_ID, ""), 0) + 1
        return seen

    await eventually(
        rel.pods,
        lambda pods: counts(pods) == batches,
        what=f"new pods labelled rollout-id={rollout_id} per batch {batches}",
    )


async def test_observed_workload_generation_follows_a_scale_while_healthy(
    kube: KubeClient, namespace: str
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(_rollout(extra_workload=False))
    before = (await rel.deployment())["metadata"]["generation"]

    await kube.patch(r.DEPLOYMENT, "demo", {"spec": {"replicas": 6}}, namespace)

    ro = await eventually(
        rel.rollout,
        lambda ro: ro["status"]["canaryStatus"].get("observedWorkloadGeneration") == before + 1,
        what="observedWorkloadGeneration to follow the scale",
    )
    assert ro["status"]["phase"] == "Healthy"
    await rel.then_pods({V1: 6}, what="6 pods")
