"""The controller process against the real cluster: status basics, restarts, leadership, bad input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.builders import deployment
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.waiting import eventually

LEASE = "graylane-controller"


def rollout(
    name: str, namespace: str, workload: str, *, steps: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload},
            "strategy": {"canary": {"steps": steps or [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]}},
        },
    }


async def _status(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    return dict((await kube.get(r.ROLLOUT, name, namespace)).get("status") or {})


async def test_missing_workload_gets_initial_and_workload_not_found(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    await kube.create(r.ROLLOUT, rollout("ro", namespace, "nope"))

    status = await eventually(
        lambda: _status(kube, namespace, "ro"), lambda s: s.get("phase") == "Initial", what="phase Initial"
    )

    assert status["message"] == "Workload Not Found"
    # The runtime stores a decision's status before its actions, so the finalizer follows the status.
    obj = await eventually(
        lambda: kube.get(r.ROLLOUT, "ro", namespace),
        lambda o: "rollouts.kruise.io/rollout" in (o["metadata"].get("finalizers") or []),
        what="the Rollout's finalizer",
    )
    assert obj["metadata"]["annotations"]["rollouts.kruise.io/hash"]


async def test_rollout_with_workload_becomes_healthy_and_labels_it(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=2))
    await kube.create(r.ROLLOUT, rollout("ro", namespace, "demo"))

    status = await eventually(
        lambda: _status(kube, namespace, "ro"),
        lambda s: s.get("message") == "workload deployment is completed",
        what="first deploy completed",
    )

    assert status["phase"] == "Healthy"
    assert status["canaryStatus"]["currentStepState"] == "Completed"
    assert status["currentStepIndex"] == 2
    dep = await kube.get(r.DEPLOYMENT, "demo", namespace)
    assert dep["metadata"]["labels"]["rollouts.kruise.io/workload-type"] == "deployment"


async def test_workload_appearing_later_moves_rollout_to_healthy(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    await kube.create(r.ROLLOUT, rollout("ro", namespace, "late"))
    await eventually(
        lambda: _status(kube, namespace, "ro"), lambda s: s.get("phase") == "Initial", what="Initial"
    )

    await kube.create(r.DEPLOYMENT, deployment("late", namespace, replicas=1))

    await eventually(
        lambda: _status(kube, namespace, "ro"), lambda s: s.get("phase") == "Healthy", what="Healthy"
    )


async def test_deleting_a_rollout_removes_its_finalizer(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    await kube.create(r.ROLLOUT, rollout("ro", namespace, "nope"))
    await eventually(
        lambda: kube.get(r.ROLLOUT, "ro", namespace),
        lambda o: bool(o["metadata"].get("finalizers")),
        what="finalizer added",
    )

    await kube.delete(r.ROLLOUT, "ro", namespace)

    await eventually(
        lambda: kube.get_or_none(r.ROLLOUT, "ro", namespace), lambda o: o is None, what="rollout gone"
    )


async def test_killing_and_restarting_the_controller_loses_nothing(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=1))
    await kube.create(r.ROLLOUT, rollout("before", namespace, "demo"))
    await eventually(
        lambda: _status(kube, namespace, "before"),
        lambda s: s.get("message") == "workload deployment is completed",
        what="settled before the crash",
    )
    settled = await kube.get(r.ROLLOUT, "before", namespace)

    graylane_controller.kill()
    # Created while no controller runs: the webhook is down too, so use a Rollout-free change.
    await kube.create(r.DEPLOYMENT, deployment("other", namespace, replicas=1))
    graylane_controller.start()
    graylane_controller.wait_ready()

    await kube.create(r.ROLLOUT, rollout("after", namespace, "other"))
    await eventually(
        lambda: _status(kube, namespace, "after"),
        lambda s: s.get("phase") == "Healthy",
        what="a new Rollout handled after the restart",
    )
    again = await kube.get(r.ROLLOUT, "before", namespace)
    assert again["status"] == settled["status"]
    # No needless writes on restart: a settled Rollout is read, not rewritten.
    assert again["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]


async def _holder(kube: KubeClient, namespace: str) -> str:
    lease = await kube.get_or_none(r.LEASE, LEASE, namespace)
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


@pytest.fixture
def two_controllers(
    kubeconfig: Path, tmp_path: Path
) -> Iterator[tuple[ControllerProcess, ControllerProcess]]:
    """Two controllers with their own lease namespace, so the session's controller is not involved."""
    ns = "graylane-election"
    procs = [
        ControllerProcess(kubeconfig, tmp_path, identity=f"ctl-{i}", install=False, namespace=ns)
        for i in (1, 2)
    ]
    try:
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.kill()


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_two_controllers_elect_one_leader_and_the_other_takes_over(
    kube: KubeClient, two_controllers: tuple[ControllerProcess, ControllerProcess], how: str
) -> None:
    """A stopped leader gives the lease up as it exits; a killed one loses it when it expires (15 s).
    Either way the standby takes over; how long it took is printed, not asserted (a loaded machine)."""
    ns = "graylane-election"
    if await kube.get_or_none(r.NAMESPACE, ns) is None:
        await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    first, second = two_controllers
    first.start()
    second.start()
    holder = await eventually(
        lambda: _holder(kube, ns), lambda h: h in ("ctl-1", "ctl-2"), what="one leader", timeout=60
    )
    leader, standby = (first, second) if holder == "ctl-1" else (second, first)
    await asyncio.sleep(3)
    assert await _holder(kube, ns) == leader.identity  # the standby did not steal it

    stopped = time.monotonic()
    if how == "stop":
        assert leader.stop() == 0
        # A clean exit releases the lease (holder "") before the process ends; the standby may
        # already hold it by the time we look.
        assert await _holder(kube, ns) in ("", standby.identity)
    else:
        leader.kill()
    await eventually(
        lambda: _holder(kube, ns),
        lambda h: h == standby.identity,
        what="takeover by the standby",
        timeout=180,
    )
    print(f"{how}: the standby took over {time.monotonic() - stopped:.1f} s after the leader ended")
