"""Issue acceptance: steps edited mid-release, nextStepIndex written by hand, timed pauses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from graylane.kube.client import KubeClient
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")


def rollout_with(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": {"enableExtraWorkloadForCanary": True, "steps": steps}},
        },
    }


THREE_STEPS: list[dict[str, Any]] = [
    {"replicas": 1, "pause": {}},
    {"replicas": 2, "pause": {}},
    {"replicas": "100%"},
]


async def _at_step_two(kube: KubeClient, namespace: str) -> Release:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(rollout_with(THREE_STEPS))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 5, V2: 2}, what="2 canary pods at step 2")
    return rel


async def test_raising_the_current_step_mid_release_scales_to_it(kube: KubeClient, namespace: str) -> None:
    rel = await _at_step_two(kube, namespace)
    edited = [THREE_STEPS[0], {"replicas": 3, "pause": {}}, THREE_STEPS[2]]

    await rel.when_rollout_patched({"spec": {"strategy": {"canary": {"steps": edited}}}})

    await rel.then_pods({V1: 5, V2: 3}, what="3 canary pods after the edit")
    ro = await rel.then_paused_at(2)
    assert ro["status"]["canaryStatus"]["nextStepIndex"] == 3


async def test_lowering_steps_below_the_deployed_pods_lands_on_the_next_step(
    kube: KubeClient, namespace: str
) -> None:
    rel = await _at_step_two(kube, namespace)
    edited = [THREE_STEPS[0], {"replicas": 1, "pause": {}}, THREE_STEPS[2]]

    await rel.when_rollout_patched({"spec": {"strategy": {"canary": {"steps": edited}}}})

    # Reference: the first step whose replicas keep the 2 upgraded pods is step 3 (100%), the last.
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="release completed at step 3")


async def test_next_step_index_written_by_hand_jumps(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(rollout_with(THREE_STEPS))
    await rel.when_image(V2)
    await rel.then_paused_at(1)

    await rel.when_status_patched({"canaryStatus": {"nextStepIndex": 3}})

    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="jumped to step 3 (100%) and completed")


async def test_timed_pause_advances_within_a_second_of_its_duration(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=3)
    steps = [{"replicas": 1, "pause": {"duration": 4}}, {"replicas": 2, "pause": {}}, {"replicas": "100%"}]
    await rel.given_rollout(rollout_with(steps))
    await rel.when_image(V2)
    paused = await rel.then_paused_at(1)
    started = dt.datetime.fromisoformat(
        paused["status"]["canaryStatus"]["lastUpdateTime"].replace("Z", "+00:00")
    )

    moved = await eventually(
        rel.rollout,
        lambda ro: ro["status"]["canaryStatus"]["currentStepIndex"] == 2,
        what="step 2 after the timed pause",
        interval=0.05,
    )
    seen = dt.datetime.now(dt.UTC)
    late = (seen - started).total_seconds() - 4
    # The pause is due at lastUpdateTime + duration exactly (both at 1 s resolution, the same value the
    # controller used), so `late` is the controller's lateness plus this test's polling (≤ 0.05 s + a GET).
    print(f"timed pause advanced {late:.3f}s after its duration")
    assert 0.0 <= late <= 1.0, f"advanced {late:+.2f}s after the duration"
    assert moved["status"]["canaryStatus"]["currentStepIndex"] == 2
