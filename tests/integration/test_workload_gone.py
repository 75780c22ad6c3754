"""A release whose Deployment is deleted mid-way: the Rollout still undoes what the release changed.

v1beta1 Rollouts with `trafficRoutings` inline (no TrafficRouting object), canary style (an extra canary
Deployment), through an nginx Ingress and through a Gateway API HTTPRoute. At step 1 the stable Service
is narrowed to the stable revision, the gateway sends 20% to the canary Service, and a BatchRelease
runs the canary Deployment. The Deployment is deleted, then the Rollout is deleted or disabled (or
stays): the Service must select every pod of the app again, the gateway send everything to stable, and
the canary Service, BatchRelease and canary Deployment be gone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.builders import deployment
from tests.integration.release_dsl import V1, V2, V3, Release
from tests.integration.traffic_fixtures import (
    canary_ingress_annotations,
    canary_rollout,
    controller_sees_gateway_api,
    gateway_api_crds,
    http_route,
    ingress,
    service,
    traffic_controller,
)
from tests.integration.waiting import eventually

__all__ = ["controller_sees_gateway_api", "gateway_api_crds", "traffic_controller"]  # fixtures
pytestmark = pytest.mark.usefixtures("traffic_controller")

STEPS: list[dict[str, Any]] = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}]
INGRESS = {"ingress": {"name": "web"}, "gracePeriodSeconds": 1}
GATEWAY = {"gateway": {"httpRouteName": "web-route"}, "gracePeriodSeconds": 1}
STABLE_ONLY = {"app": "demo"}


def _weights(route: Obj) -> list[tuple[str, int | None]]:
    return [(ref["name"], ref.get("weight")) for ref in route["spec"]["rules"][0]["backendRefs"]]


class Gateway:
    """One provider's objects: how to create them, see the canary on them, and see them restored."""

    def __init__(self, kube: KubeClient, namespace: str, provider: str, grace: int = 1) -> None:
        self.kube, self.namespace, self.provider, self.grace = kube, namespace, provider, grace
        self.original: Obj | None = None

    @property
    def routing(self) -> dict[str, Any]:
        return {**(INGRESS if self.provider == "ingress" else GATEWAY), "gracePeriodSeconds": self.grace}

    async def create(self) -> None:
        if self.provider == "ingress":
            await self.kube.create(r.INGRESS, ingress(self.namespace))
        else:
            await self.kube.create(r.HTTPROUTE, http_route(self.namespace))
            self.original = (await self.kube.get(r.HTTPROUTE, "web-route", self.namespace))["spec"]

    async def then_canary(self, weight: int) -> None:
        if self.provider == "ingress":
            await canary_ingress_annotations(
                self.kube, self.namespace, {"canary": "true", "canary-weight": str(weight)}
            )
            return
        want = [("web", 100 - weight), ("web-canary", weight)]
        await eventually(self._route, lambda rt: _weights(rt) == want, what=f"HTTPRoute weights {want}")

    async def all_to_stable(self) -> bool:
        if self.provider == "ingress":
            return await self.kube.get_or_none(r.INGRESS, "web-canary", self.namespace) is None
        return (await self._route())["spec"] == self.original

    async def _route(self) -> Obj:
        return await self.kube.get(r.HTTPROUTE, "web-route", self.namespace)


async def _given_paused_at_step_one(
    kube: KubeClient, namespace: str, provider: str, grace: int = 1
) -> tuple[Release, Gateway]:
    gateway = Gateway(kube, namespace, provider, grace)
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await gateway.create()
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(canary_rollout(gateway.routing, STEPS))
    await rel.when_image(V2)
    ro = await rel.then_paused_at(1)
    await gateway.then_canary(20)
    stable = await kube.get(r.SERVICE, "web", namespace)
    assert stable["spec"]["selector"] == {
        **STABLE_ONLY,
        "pod-template-hash": ro["status"]["canaryStatus"]["stableRevision"],
    }
    assert await kube.get_or_none(r.SERVICE, "web-canary", namespace) is not None
    assert await kube.get_or_none(r.BATCHRELEASE, "demo", namespace) is not None
    assert len(await rel.canary_deployments()) == 1
    return rel, gateway


async def _when_deployment_deleted(kube: KubeClient, namespace: str) -> None:
    await kube.delete(r.DEPLOYMENT, "demo", namespace)
    await eventually(
        lambda: kube.get_or_none(r.DEPLOYMENT, "demo", namespace), lambda d: d is None, what="Deployment gone"
    )


async def _released_state(
    kube: KubeClient, namespace: str, rel: Release, gateway: Gateway
) -> dict[str, object]:
    svc = await kube.get(r.SERVICE, "web", namespace)
    return {
        "stable selector": svc["spec"]["selector"],
        "all traffic to stable": await gateway.all_to_stable(),
        "canary Service": await kube.get_or_none(r.SERVICE, "web-canary", namespace) is not None,
        "BatchRelease": await kube.get_or_none(r.BATCHRELEASE, "demo", namespace) is not None,
        "canary Deployments": len(await rel.canary_deployments()),
    }


UNDONE: dict[str, object] = {
    "stable selector": STABLE_ONLY,
    "all traffic to stable": True,
    "canary Service": False,
    "BatchRelease": False,
    "canary Deployments": 0,
}


async def _then_undone(kube: KubeClient, namespace: str, rel: Release, gateway: Gateway) -> None:
    await eventually(
        lambda: _released_state(kube, namespace, rel, gateway),
        lambda state: state == UNDONE,
        what="the release undone: Service selects every pod, gateway all to stable, canary objects gone",
        timeout=120,
    )


async def _deleted(kube: KubeClient, namespace: str) -> None:
    await kube.delete(r.ROLLOUT, "demo", namespace)
    await eventually(
        lambda: kube.get_or_none(r.ROLLOUT, "demo", namespace),
        lambda ro: ro is None,
        what="the Rollout finalised and gone",
        timeout=120,
    )


async def _disabled(kube: KubeClient, namespace: str) -> None:
    await kube.patch(r.ROLLOUT, "demo", {"spec": {"disabled": True}}, namespace)
    await eventually(
        lambda: kube.get(r.ROLLOUT, "demo", namespace),
        lambda ro: (
            (ro["status"].get("phase"), ro["status"].get("message")) == ("Disabled", "Rollout is disabled")
        ),
        what="the Rollout Disabled",
        timeout=120,
    )


ENDINGS: dict[str, Callable[[KubeClient, str], Awaitable[None]]] = {
    "deleted": _deleted,
    "disabled": _disabled,
}


@pytest.mark.parametrize("provider", ["ingress", "gateway"])
@pytest.mark.parametrize("ending", ["deleted", "disabled"])
async def test_the_deployment_deleted_then_the_rollout_the_release_is_undone(
    kube: KubeClient, namespace: str, provider: str, ending: str
) -> None:
    rel, gateway = await _given_paused_at_step_one(kube, namespace, provider)
    # The user's order: the Deployment first (not waiting for it to go), then the Rollout.
    await kube.delete(r.DEPLOYMENT, "demo", namespace)
    await ENDINGS[ending](kube, namespace)
    await _then_undone(kube, namespace, rel, gateway)


@pytest.mark.parametrize("provider", ["ingress", "gateway"])
async def test_the_deployment_deleted_while_the_rollout_stays_then_recreated_is_released_correctly(
    kube: KubeClient, namespace: str, provider: str
) -> None:
    rel, gateway = await _given_paused_at_step_one(kube, namespace, provider)
    await _when_deployment_deleted(kube, namespace)
    ro = await eventually(
        rel.rollout,
        lambda o: (o["status"].get("phase"), o["status"].get("message")) == ("Initial", "Workload Not Found"),
        what="Initial, Workload Not Found (Kruise's words)",
    )
    await _then_undone(kube, namespace, rel, gateway)
    ro = await eventually(
        rel.rollout,
        lambda o: "canaryStatus" not in o["status"],
        what="the status reset once the undo is done",
    )
    assert (ro["status"]["phase"], ro["status"]["message"]) == ("Initial", "Workload Not Found")
    assert "rollouts.kruise.io/rollout" in ro["metadata"]["finalizers"]

    # The Deployment re-created (v2 now): found Healthy, then a release to v3 follows the steps.
    await rel.given_deployment(replicas=3, image=V2)
    await eventually(
        rel.rollout,
        lambda o: (o["status"].get("canaryStatus") or {}).get("currentStepState") == "Completed",
        what="Healthy with the re-created Deployment's first deploy completed",
    )
    assert V1 not in await rel.pod_images()
    await rel.when_image(V3)
    ro = await rel.then_paused_at(1)
    await gateway.then_canary(20)
    sub = ro["status"]["canaryStatus"]
    stable = await kube.get(r.SERVICE, "web", namespace)
    assert stable["spec"]["selector"] == {**STABLE_ONLY, "pod-template-hash": sub["stableRevision"]}
    canary = await kube.get(r.SERVICE, "web-canary", namespace)
    assert canary["spec"]["selector"] == {**STABLE_ONLY, "pod-template-hash": sub["podTemplateHash"]}
    await rel.then_pods({V2: 3, V3: 1}, what="3 v2 pods and 1 v3 canary pod")

    await rel.when_approved()
    await rel.then_completed()
    await _then_undone(kube, namespace, rel, gateway)
    await rel.then_pods({V3: 3}, what="3 v3 pods after completion")


@pytest.mark.parametrize("provider", ["ingress", "gateway"])
async def test_a_deployment_recreated_before_the_undo_ends_is_left_alone_then_released(
    kube: KubeClient, namespace: str, provider: str
) -> None:
    """Deleted mid-release and created again at once: the new Deployment meets the old release's
    BatchRelease, canary Service and routes while the Rollout is still undoing them (each traffic task
    waits a grace period, 5 s here). The undo still ends, the new Deployment is neither paused nor
    claimed by the old BatchRelease, and its next release follows the steps."""
    rel, gateway = await _given_paused_at_step_one(kube, namespace, provider, grace=5)
    await _when_deployment_deleted(kube, namespace)
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=3, image=V2))
    # The scenario needs the undo still under way (several 5 s grace periods after a single create).
    assert await kube.get_or_none(r.BATCHRELEASE, "demo", namespace) is not None, "undo ended too early"
    await _then_undone(kube, namespace, rel, gateway)
    ro = await eventually(
        rel.rollout,
        lambda o: (
            o["status"].get("phase") == "Healthy"
            and (o["status"].get("canaryStatus") or {}).get("currentStepState") == "Completed"
        ),
        what="Healthy with the re-created Deployment's first deploy completed",
        timeout=120,
    )
    dep = await rel.deployment()
    assert not dep["spec"].get("paused"), dep["spec"]
    left = sorted(k for k in dep["metadata"].get("annotations") or {} if "rollouts.kruise.io" in k)
    assert left == [], left
    await rel.then_pods({V2: 3}, what="3 v2 pods of the re-created Deployment")

    await rel.when_image(V3)
    ro = await rel.then_paused_at(1)
    await gateway.then_canary(20)
    stable = await kube.get(r.SERVICE, "web", namespace)
    assert stable["spec"]["selector"] == {
        **STABLE_ONLY,
        "pod-template-hash": ro["status"]["canaryStatus"]["stableRevision"],
    }
    await rel.then_pods({V2: 3, V3: 1}, what="3 v2 pods and 1 v3 canary pod")
    await rel.when_approved()
    await rel.then_completed()
    await _then_undone(kube, namespace, rel, gateway)
    await rel.then_pods({V3: 3}, what="3 v3 pods after completion")


@pytest.mark.parametrize("provider", ["ingress", "gateway"])
async def test_a_namespace_deleted_mid_release_goes(kube: KubeClient, namespace: str, provider: str) -> None:
    """The namespace controller removes the Deployment and the Rollout together: the Rollout's
    finalisation runs without a workload and ends, so the namespace does not stay Terminating."""
    await _given_paused_at_step_one(kube, namespace, provider)
    await kube.delete(r.NAMESPACE, namespace)
    await eventually(
        lambda: kube.get_or_none(r.NAMESPACE, namespace),
        lambda ns: ns is None,
        what="the namespace gone (no finalizer of graylane's left in it)",
        timeout=240,
    )
