"""A blue-green CloneSet scaled out and in while a step pauses (issue 16/17 follow-up), on OpenKruise's
CRD schema, the CloneSet's pods played by kruise_driver.py with OpenKruise's own arithmetic
(`cloneset_diffs`: calculateDiffsWithExpectation, read in its source).

The steps are test_bluegreen_cloneset.py's (100% of the pods at each step, as Kruise's docs ask for a
CloneSet): 0% traffic, then 100%. What OpenKruise's CloneSet does under a blue-green release, which no
release can change (minReadySeconds is MaxReadySeconds, so no pod is ever available):
- it never creates a pod of the old revision (a surge is for update-revision pods only) and never
  deletes a Ready one, so the 4 old pods stay exactly 4 until the release gives the settings back;
- a scale-out surges new pods only up to `replicas + min(maxSurge, old pods, replicas - new pods)`:
  from 4 old + 4 new, 8 replicas get 8 new pods, but 6 replicas get none (6 + min(6, 4, 2) = 8 pods
  are there already), so the step's "100% of 6" can never be reached.
What graylane does about it (batchrelease/bluegreen_cloneset.py): new pods beyond the step's share of
the new count are deleted (a scale-in; the CloneSet keeps the rest), and a batch counts as done once
the CloneSet will surge no further (Kruise waits for 100% of 6 forever). A pod watch checks that the
old pods serving never fell below the smallest size asked before the traffic switch.
"""

from __future__ import annotations

import pytest

from graylane.api.workloads import CLONESET
from graylane.kube.client import KubeClient
from tests.integration.kinds_fixtures import V1, V2, openkruise_crds
from tests.integration.test_bluegreen_cloneset import BlueGreenCloneSet
from tests.integration.test_release_scaling import OldPodFloor, then_counted

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")
OLD = 4  # the CloneSet's size when the release starts: its old pods, all kept until the switch


@pytest.mark.parametrize(
    ("at_step_one", "at_step_two"),
    [
        # Out (a full surge), in (3 new pods deleted), out again by one (OpenKruise adds none).
        pytest.param([(8, 8), (5, 5), (6, 5)], (4, 4), id="4-8-5-6-at-step-1-then-4-at-step-2"),
        # Out by less than the old pods: OpenKruise adds no pod, and the batch must not wait for 6.
        pytest.param([(6, 4)], (7, 6), id="4-6-at-step-1-then-7-at-step-2"),
    ],
)
async def test_a_blue_green_cloneset_scaled_at_a_pause_keeps_its_old_pods_and_completes(
    kube: KubeClient, namespace: str, at_step_one: list[tuple[int, int]], at_step_two: tuple[int, int]
) -> None:
    rel = BlueGreenCloneSet(kube, namespace, CLONESET, replicas=OLD)
    floor = OldPodFloor(kube, namespace)
    async with rel.controller():
        before = await rel.given_app()
        async with floor.watching():
            await rel.when_image(V2)
            await rel.then_paused_at(1)
            await rel.then_pods({V1: OLD, V2: OLD}, what="step 1: 4 old + 4 new pods")
            await then_counted(kube, namespace, "blueGreenStatus", replicas=OLD, new=OLD)

            for replicas, new in at_step_one:
                await rel.when_scaled(replicas)
                await rel.then_pods({V1: OLD, V2: new}, what=f"step 1 at {replicas}: {OLD} old + {new} new")
                await then_counted(kube, namespace, "blueGreenStatus", replicas=replicas, new=new)
                await rel.then_paused_at(1)

            await rel.when_approved()
            await rel.then_paused_at(2)
            replicas, new = at_step_two
            await rel.when_scaled(replicas)
            await rel.then_pods({V1: OLD, V2: new}, what=f"step 2 at {replicas}: {OLD} old + {new} new")
            await then_counted(kube, namespace, "blueGreenStatus", replicas=replicas, new=new)
            await rel.then_paused_at(2)
        # Before the switch completes, the old pods serving never fell below the smallest size asked.
        assert floor.events > 0
        smallest = min(OLD, *(size for size, _ in at_step_one), at_step_two[0])
        assert floor.lowest == smallest, f"old pods serving fell to {floor.lowest} before the switch"

        await rel.when_approved()
        await rel.then_completed()
        await rel.then_handed_back(before, V2)
