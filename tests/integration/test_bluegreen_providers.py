"""Issue 17: a blue-green release through a Gateway API HTTPRoute and a Lua custom provider (Istio's
VirtualService, on Istio's real CRD) at once: 0% then 100% to the new pods, then everything restored.

The nginx Ingress and the requests themselves are covered by test_bluegreen.py and
tests/traffic/test_bluegreen_traffic.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.custom_fixtures import (
    ISTIO_VS,
    controller_sees_custom_kinds,
    custom_controller,
    gloo_crds,
    istio_crds,
    virtual_service,
)
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import gateway_api_crds, http_route, service
from tests.integration.waiting import eventually

__all__ = [  # fixtures
    "controller_sees_custom_kinds",
    "custom_controller",
    "gateway_api_crds",
    "gloo_crds",
    "istio_crds",
]
pytestmark = pytest.mark.usefixtures("custom_controller")

STEPS: list[dict[str, Any]] = [
    {"replicas": "50%", "traffic": "0%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]
ROUTING = {
    "service": "web",
    "gracePeriodSeconds": 1,
    "gateway": {"httpRouteName": "web-route"},
    "customNetworkRefs": [
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "web-vs"}
    ],
}


def _rollout() -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"blueGreen": {"steps": STEPS, "trafficRoutings": [ROUTING]}},
        },
    }


def _vs_weights(vs: Obj) -> list[tuple[str, int | None]]:
    main = next(rule for rule in vs["spec"]["http"] if rule.get("name") == "main")
    return [(d["destination"]["host"], d.get("weight")) for d in main["route"]]


def _route_weights(route: Obj) -> list[tuple[str, int | None]]:
    return [(ref["name"], ref.get("weight")) for ref in route["spec"]["rules"][0]["backendRefs"]]


async def test_blue_green_through_an_httproute_and_a_lua_provider(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace, sub="blueGreenStatus")
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(ISTIO_VS, virtual_service(namespace))
    await kube.create(r.HTTPROUTE, http_route(namespace))
    original_vs = await kube.get(ISTIO_VS, "web-vs", namespace)
    original_route = await kube.get(r.HTTPROUTE, "web-route", namespace)
    await rel.given_deployment(replicas=4)
    await rel.given_rollout(_rollout())

    await rel.when_image(V2)
    for step, weight in ((1, 0), (2, 100)):
        await rel.then_paused_at(step)
        await eventually(
            lambda: kube.get(ISTIO_VS, "web-vs", namespace),
            lambda vs, w=weight: _vs_weights(vs) == [("web", 100 - w), ("web-canary", w)],  # type: ignore[misc]
            what=f"VirtualService at {weight}% on the new pods",
        )
        await eventually(
            lambda: kube.get(r.HTTPROUTE, "web-route", namespace),
            lambda o, w=weight: _route_weights(o) == [("web", 100 - w), ("web-canary", w)],  # type: ignore[misc]
            what=f"HTTPRoute at {weight}% on the new pods",
        )
        await rel.then_pods({V1: 4, V2: 2 if step == 1 else 4}, what=f"both versions at step {step}")
        await rel.when_approved()

    await rel.then_completed()
    await rel.then_pods({V2: 4}, what="the old pods scaled down at the end")
    vs = await eventually(
        lambda: kube.get(ISTIO_VS, "web-vs", namespace),
        lambda o: o["spec"] == original_vs["spec"],
        what="the VirtualService restored",
    )
    assert vs["metadata"].get("annotations") == original_vs["metadata"].get("annotations")
    route = await eventually(
        lambda: kube.get(r.HTTPROUTE, "web-route", namespace),
        lambda o: o["spec"]["rules"] == original_route["spec"]["rules"],
        what="the HTTPRoute's rules restored",
    )
    assert [ref["name"] for ref in route["spec"]["rules"][0]["backendRefs"]] == ["web"]
    assert await kube.get_or_none(r.SERVICE, "web-canary", namespace) is None
    assert (await kube.get(r.SERVICE, "web", namespace))["spec"]["selector"] == {"app": "demo"}
