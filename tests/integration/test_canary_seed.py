"""Issue acceptance: the seed scenarios of a canary release of a Deployment, verbatim."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube.client import KubeClient
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")


def seed_one_v1alpha1() -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"weight": 10, "replicas": 1, "pause": {}},
                        {"weight": 30, "replicas": 2, "pause": {}},
                    ]
                }
            },
        },
    }


def two_steps_v1beta1(style: str) -> dict[str, Any]:
    """Steps 20% and 90%. Partition style may not combine traffic with more than 50% of the pods
    (the webhook's partition-percent-limit), so there the steps move pods only."""
    steps: list[dict[str, Any]] = [{"replicas": "20%", "pause": {}}, {"replicas": "90%", "pause": {}}]
    if style == "canary":
        steps = [{**steps[0], "traffic": "20%"}, {**steps[1], "traffic": "90%"}]
    canary: dict[str, Any] = {"steps": steps, "enableExtraWorkloadForCanary": style == "canary"}
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
    }


async def test_seed_one_weighted_canary_with_approval(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())

    await rel.when_image(V2)

    ro = await rel.then_paused_at(1)
    assert (
        ro["status"]["message"]
        == "Rollout is in step(1/2), and you need manually confirm to enter the next step"
    )
    await rel.then_pods({V1: 5, V2: 1}, what="1 canary pod next to 5 stable")
    assert (await rel.deployment())["spec"]["paused"] is True

    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 5, V2: 2}, what="2 canary pods")

    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="all 5 pods on v2")
    dep = await rel.deployment()
    assert not dep["spec"].get("paused")
    assert "rollouts.kruise.io/in-progressing" not in dep["metadata"].get("annotations", {})
    assert await rel.canary_deployments() == []


@pytest.mark.parametrize(
    ("style", "second_step_pods"), [("canary", {V1: 5, V2: 5}), ("partition", {V1: 1, V2: 4})]
)
async def test_seed_two_twenty_then_ninety_percent(
    kube: KubeClient, namespace: str, style: str, second_step_pods: dict[str, int]
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(two_steps_v1beta1(style))

    await rel.when_image(V2)

    await rel.then_paused_at(1)
    first = {V1: 5, V2: 1} if style == "canary" else {V1: 4, V2: 1}
    await rel.then_pods(first, what=f"step 1 in {style} style")
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods(second_step_pods, what=f"step 2 in {style} style")
    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="release completed")


async def test_seed_three_gray_pod_carries_patched_labels(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(
        {
            "apiVersion": "rollouts.kruise.io/v1beta1",
            "kind": "Rollout",
            "metadata": {"name": "demo"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {
                    "canary": {
                        "steps": [{"pause": {}, "replicas": 1}],
                        "enableExtraWorkloadForCanary": True,
                        "patchPodTemplateMetadata": {"labels": {"opensergo.io/canary-gray": "gray"}},
                    }
                },
            },
        }
    )

    await rel.when_image(V2)

    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 1}, what="one gray pod")
    gray = [p for p in await rel.pods() if p["spec"]["containers"][0]["image"] == V2]
    assert [p["metadata"]["labels"].get("opensergo.io/canary-gray") for p in gray] == ["gray"]


async def test_rollback_at_step_one_restores_v1(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 1}, what="1 canary pod")

    await rel.when_image(V1)

    ro = await rel.then_completed(succeeded=False)
    assert ro["status"]["message"] == "Rollout progressing has been cancelled"
    await rel.then_pods({V1: 5}, what="every pod on v1")
    assert await rel.canary_deployments() == []


async def test_newer_revision_mid_release_restarts_at_step_one(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.when_approved()
    await rel.then_paused_at(2)

    await rel.when_image("demo:v3")

    ro = await rel.then_paused_at(1)
    assert ro["status"]["canaryStatus"]["canaryRevision"] != ""
    await rel.then_pods({V1: 5, "demo:v3": 1}, what="v3 canary at step 1, v2 gone")


async def test_deleting_the_rollout_mid_release_lets_the_deployment_finish(
    kube: KubeClient, namespace: str
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)

    await kube.delete(rel.rollout_resource, "demo", namespace)

    await rel.then_pods({V2: 5}, what="native rollout completes to v2")
    assert not (await rel.deployment())["spec"].get("paused")
    assert await rel.canary_deployments() == []


async def test_disabling_mid_release_ends_disabled_and_unpaused(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)

    await rel.when_rollout_patched({"spec": {"disabled": True}})

    ro = await eventually(rel.rollout, lambda o: o["status"].get("phase") == "Disabled", what="Disabled")
    assert ro["status"]["message"] == "Rollout is disabled"
    await rel.then_pods({V2: 5}, what="native rollout completes after disabling")
    assert not (await rel.deployment())["spec"].get("paused")


async def test_timed_pause_advances_on_its_own(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(
        {
            "apiVersion": "rollouts.kruise.io/v1beta1",
            "kind": "Rollout",
            "metadata": {"name": "demo"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {
                    "canary": {
                        "enableExtraWorkloadForCanary": True,
                        "steps": [{"replicas": 1, "pause": {"duration": 3}}, {"replicas": "100%"}],
                    }
                },
            },
        }
    )
    await rel.when_image(V2)
    await rel.then_completed(timeout=120)
    await rel.then_pods({V2: 3}, what="release completed after the timed pause")
    events = await kube.list(
        __import__("graylane.kube.events", fromlist=["CORE_EVENT"]).CORE_EVENT, namespace
    )
    assert any("upgrade step(1)" in e.get("message", "") for e in events["items"])


async def test_restart_mid_release_resumes_without_duplicates(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)

    graylane_controller.kill()
    graylane_controller.start()
    graylane_controller.wait_ready()

    await rel.then_paused_at(1)
    assert len(await rel.canary_deployments()) == 1
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 5, V2: 2}, what="2 canary pods after restart")
    assert len(await rel.canary_deployments()) == 1
