"""Scaling a workload at the edges of a release, on the real cluster.

- Scale-in after the last batch: every pod is on the new version (the workload is "promoted"), the user
  scales 10 -> 4 (Deployment) or 4 -> 2 (StatefulSet) while the last step pauses. The BatchRelease
  records the new size (`observedWorkloadReplicas`; Kruise leaves the old one there, see
  docs/decisions.md) and its counts, the Rollout's canaryReplicas follow, and approval completes the
  release on the new size.
- Blue-green: a Deployment scaled out (4 -> 8) and back in (8 -> 4) while the first step (50% of the
  pods, no traffic) pauses. At each size the new version has the step's share of the new count, every
  old pod is kept beside them until the traffic switch, the BatchRelease and the Rollout count the new
  size, and the release completes with the Deployment unpaused and every pod updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graylane.api.workloads import STATEFULSET
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.kinds_fixtures import KindRelease, rollout
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")


def half_then_all(replicas: int) -> list[dict[str, Any]]:
    """Half the pods, then all of them, pausing at both. Counted, not "100%": a canary's last step of
    "100%" ends the release at once, and the workload must be scaled with the release still open."""
    return [{"replicas": replicas // 2, "pause": {}}, {"replicas": replicas, "pause": {}}]


BLUE_GREEN_STEPS: list[dict[str, Any]] = [
    {"replicas": "50%", "traffic": "0%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]
_COUNTS = {
    "canaryStatus": ("canaryReplicas", "canaryReadyReplicas"),
    "blueGreenStatus": ("updatedReplicas", "updatedReadyReplicas"),
}
# What a release writes on a Deployment: none of it may be left once the release is over.
RELEASE_KEYS = (
    "rollouts.kruise.io/original-deployment-strategy",
    "batchrelease.rollouts.kruise.io/control-info",
    "rollouts.kruise.io/in-progressing",
)


def v1beta1_rollout(strategy: str, steps: list[dict[str, Any]]) -> Obj:
    """A v1beta1 Rollout of the Deployment `demo`: `canary` (the partition style) or `blueGreen`."""
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {strategy: {"steps": steps}},
        },
    }


async def batch_release(kube: KubeClient, namespace: str) -> Obj:
    return await kube.get(r.BATCHRELEASE, "demo", namespace)


async def then_counted(kube: KubeClient, namespace: str, sub: str, *, replicas: int, new: int) -> None:
    """The BatchRelease has seen `replicas` with `new` of them updated and ready; the Rollout mirrors it."""

    def br_counts(br: Obj) -> bool:
        st = br.get("status") or {}
        canary = st.get("canaryStatus") or {}
        return bool(
            st.get("observedWorkloadReplicas") == replicas
            and canary.get("updatedReplicas") == new
            and canary.get("updatedReadyReplicas") == new
            and canary.get("batchState") == "Ready"
        )

    await eventually(
        lambda: batch_release(kube, namespace),
        br_counts,
        what=f"BatchRelease: {replicas} replicas observed, {new} updated and ready, batch Ready",
        timeout=120,
    )

    # A canary sub-status calls them canaryReplicas / canaryReadyReplicas, a blue-green one updated*.
    counted, ready = _COUNTS[sub]

    def ro_counts(ro: Obj) -> bool:
        st = (ro.get("status") or {}).get(sub) or {}
        return bool(st.get(counted) == new and st.get(ready) == new)

    await eventually(
        lambda: kube.get(r.ROLLOUT, "demo", namespace), ro_counts, what=f"Rollout {sub} counts {new} new pods"
    )


async def when_scaled(rel: Release, replicas: int) -> None:
    """`kubectl scale deployment demo --replicas=N`."""
    await rel.kube.patch(r.DEPLOYMENT, rel.name, {"spec": {"replicas": replicas}}, rel.namespace)


async def then_handed_back(rel: Release, replicas: int) -> None:
    """Unpaused, every pod updated and ready, nothing of the release left on the Deployment."""

    def done(dep: Obj) -> bool:
        st, annotations = dep.get("status") or {}, dep["metadata"].get("annotations") or {}
        return bool(
            not dep["spec"].get("paused")
            and dep["spec"].get("replicas") == replicas
            and st.get("observedGeneration") == dep["metadata"].get("generation")
            and st.get("replicas") == st.get("updatedReplicas") == st.get("readyReplicas") == replicas
            and not any(key in annotations for key in RELEASE_KEYS)
        )

    await eventually(rel.deployment, done, what=f"Deployment handed back: {replicas} pods, all updated")
    await rel.then_pods({V2: replicas}, what=f"{replicas} {V2} pods after the release", timeout=120)


@dataclasses.dataclass
class OldPodFloor:
    """The fewest Ready old-version pods seen, from a pod watch: every change, not samples of them."""

    kube: KubeClient
    namespace: str
    lowest: int | None = None
    events: int = 0

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[OldPodFloor]:
        listed = await self.kube.list(r.POD, self.namespace, label_selector="app=demo")
        pods = {p["metadata"]["name"]: p for p in listed["items"]}
        self._count(pods)
        task = asyncio.create_task(self._follow(pods, listed["metadata"]["resourceVersion"]))
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, pods: dict[str, Obj], version: str) -> None:
        async for kind, pod in self.kube.watch(
            r.POD, self.namespace, resource_version=version, label_selector="app=demo", timeout_seconds=900
        ):
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                pods.pop(pod["metadata"]["name"], None)
            else:
                pods[pod["metadata"]["name"]] = pod
            self.events += 1
            self._count(pods)

    def _count(self, pods: dict[str, Obj]) -> None:
        old = sum(p["spec"]["containers"][0]["image"] == V1 and _serving(p) for p in pods.values())
        self.lowest = old if self.lowest is None else min(self.lowest, old)


def _serving(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not pod["metadata"].get("deletionTimestamp")


# --- scale-in after the last batch ----------------------------------------------------------------


async def test_a_deployment_scaled_in_after_the_last_batch_is_counted_and_released(
    kube: KubeClient, namespace: str
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=10)
    await rel.given_rollout(v1beta1_rollout("canary", half_then_all(10)))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V2: 10}, what="the last batch: 10 new pods", timeout=120)
    await then_counted(kube, namespace, "canaryStatus", replicas=10, new=10)

    await when_scaled(rel, 4)

    await rel.then_pods({V2: 4}, what="scaled in to 4 new pods", timeout=120)
    await then_counted(kube, namespace, "canaryStatus", replicas=4, new=4)
    await rel.then_paused_at(2)  # the same pause: the scale did not move the release on

    await rel.when_approved()
    await rel.then_completed()
    await then_handed_back(rel, 4)


async def test_a_statefulset_scaled_in_after_the_last_batch_is_counted_and_released(
    kube: KubeClient, namespace: str
) -> None:
    rel = KindRelease(kube, namespace, STATEFULSET, replicas=4)
    body = rollout(STATEFULSET, rel.name, half_then_all(4))
    # Step 2 here is the last batch: every pod new.
    await rel.given_paused_at_step_two({V2: 4}, what="the last batch: 4 new pods", rollout_body=body)
    await then_counted(kube, namespace, "canaryStatus", replicas=4, new=4)

    await rel.when_scaled(2)

    await rel.then_pods({V2: 2}, what="scaled in to 2 new pods")
    await then_counted(kube, namespace, "canaryStatus", replicas=2, new=2)
    await rel.then_paused_at(2)

    await rel.when_approved()
    await rel.then_released({V2: 2}, what="released on 2 replicas")


# --- blue-green: scaled out and in while a step pauses --------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "at_step_two"),
    [
        # Out and back in while step 1 (50%) pauses; odd sizes round the step's share up.
        pytest.param([8, 5, 4], 6, id="4-8-5-4-at-step-1-then-6-at-step-2"),
        # Down to one pod (whose share is that pod) and up again; in at step 2.
        pytest.param([1, 7, 3], 2, id="4-1-7-3-at-step-1-then-2-at-step-2"),
    ],
)
async def test_a_blue_green_deployment_scaled_out_and_in_at_a_pause_keeps_both_versions_up(
    kube: KubeClient, namespace: str, sizes: list[int], at_step_two: int
) -> None:
    rel = Release(kube, namespace, sub="blueGreenStatus")
    await rel.given_deployment(replicas=4)
    await rel.given_rollout(v1beta1_rollout("blueGreen", BLUE_GREEN_STEPS))
    floor = OldPodFloor(kube, namespace)
    async with floor.watching():
        await rel.when_image(V2)
        await rel.then_paused_at(1)
        # 50% of 4: 2 new pods beside all 4 old ones.
        await rel.then_pods({V1: 4, V2: 2}, what="step 1: 4 old + 2 new pods")
        await then_counted(kube, namespace, "blueGreenStatus", replicas=4, new=2)

        for replicas in sizes:
            await when_scaled(rel, replicas)
            new = -(-replicas // 2)  # the step's 50% of the new count, rounded up
            await rel.then_pods(
                {V1: replicas, V2: new}, what=f"scaled to {replicas}: {replicas} old + {new} new", timeout=120
            )
            await then_counted(kube, namespace, "blueGreenStatus", replicas=replicas, new=new)
            await rel.then_paused_at(1)

        await rel.when_approved()
        await rel.then_paused_at(2)
        # The last step: every pod new, the old ones all still there until the switch is approved.
        last = sizes[-1]
        await rel.then_pods({V1: last, V2: last}, what=f"step 2: {last} old + {last} new pods")
        await then_counted(kube, namespace, "blueGreenStatus", replicas=last, new=last)
        await when_scaled(rel, at_step_two)
        await rel.then_pods(
            {V1: at_step_two, V2: at_step_two},
            what=f"step 2 scaled to {at_step_two}: as many old as new pods",
            timeout=120,
        )
        await then_counted(kube, namespace, "blueGreenStatus", replicas=at_step_two, new=at_step_two)
        await rel.then_paused_at(2)
    # Before the switch the old pods serving never fell below the smallest size asked for.
    assert floor.events > 0
    smallest = min(4, *sizes, at_step_two)
    assert floor.lowest == smallest, f"old pods serving fell to {floor.lowest} before the traffic switch"

    await rel.when_approved()
    await rel.then_completed()
    await then_handed_back(rel, at_step_two)
