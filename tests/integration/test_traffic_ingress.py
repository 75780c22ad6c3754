"""Issue acceptance: canary traffic through an nginx Ingress (Kruise's e2e expectations, verbatim)."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import (
    canary_ingress_annotations,
    canary_rollout,
    controller_sees_gateway_api,
    gateway_api_crds,
    ingress,
    service,
    traffic_controller,
)
from tests.integration.waiting import eventually

__all__ = ["controller_sees_gateway_api", "gateway_api_crds", "traffic_controller"]  # fixtures
pytestmark = pytest.mark.usefixtures("traffic_controller")

ROUTING = {"ingress": {"name": "web"}}


async def _given(kube: KubeClient, namespace: str, steps: list[dict[str, Any]], replicas: int = 3) -> Release:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await rel.given_deployment(replicas=replicas)
    await rel.given_rollout(canary_rollout(ROUTING, steps))
    return rel


async def _selectors(kube: KubeClient, namespace: str) -> tuple[dict[str, str], dict[str, str] | None]:
    stable = await kube.get(r.SERVICE, "web", namespace)
    canary = await kube.get_or_none(r.SERVICE, "web-canary", namespace)
    return stable["spec"]["selector"], (canary["spec"]["selector"] if canary else None)


async def _then_routing_undone(kube: KubeClient, namespace: str) -> None:
    async def state() -> tuple[object, object, object]:
        ing = await kube.get_or_none(r.INGRESS, "web-canary", namespace)
        stable, canary = await _selectors(kube, namespace)
        return ing is None, canary, stable

    await eventually(state, lambda s: s == (True, None, {"app": "demo"}), what="routing undone", timeout=60)


async def test_weights_20_to_90_then_completion_cleans_up(kube: KubeClient, namespace: str) -> None:
    weights = [20, 40, 60, 80, 90]
    steps = [{"replicas": f"{w}%", "traffic": f"{w}%", "pause": {}} for w in weights]
    rel = await _given(kube, namespace, steps)

    await rel.when_image(V2)
    for index, weight in enumerate(weights, start=1):
        await rel.then_paused_at(index)
        await canary_ingress_annotations(kube, namespace, {"canary": "true", "canary-weight": str(weight)})
        if index == 1:
            ro = await rel.rollout()
            sub = ro["status"]["canaryStatus"]
            stable, canary = await _selectors(kube, namespace)
            assert stable == {"app": "demo", "pod-template-hash": sub["stableRevision"]}
            assert canary == {"app": "demo", "pod-template-hash": sub["podTemplateHash"]}
            owner = (await kube.get(r.INGRESS, "web-canary", namespace))["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["name"], owner["controller"]) == ("Rollout", "demo", True)
        await rel.when_approved()

    await rel.then_completed()
    await _then_routing_undone(kube, namespace)
    await rel.then_pods({V2: 3}, what="3 v2 pods after completion")


async def test_header_and_cookie_matches_then_a_weight(kube: KubeClient, namespace: str) -> None:
    matches = [
        {"headers": [{"name": "user_id", "type": "RegularExpression", "value": "123456"}]},
        {"headers": [{"name": "canary-by-cookie", "value": "demo"}]},
    ]
    steps = [
        {"replicas": 1, "matches": matches, "pause": {}},
        {"replicas": 1, "traffic": "30%", "pause": {}},
        {"replicas": "100%"},
    ]
    routing = {**ROUTING, "gracePeriodSeconds": 1}
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(canary_rollout(routing, steps))

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await canary_ingress_annotations(
        kube,
        namespace,
        {
            "canary": "true",
            "canary-by-header": "user_id",
            "canary-by-header-pattern": "123456",
            "canary-by-cookie": "demo",
        },
    )
    await rel.when_approved()
    await rel.then_paused_at(2)
    await canary_ingress_annotations(kube, namespace, {"canary": "true", "canary-weight": "30"})
    canary = await kube.get(r.INGRESS, "web-canary", namespace)
    assert canary["metadata"]["annotations"]["team"] == "web", "the stable Ingress' annotations are copied"
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-canary"

    await rel.when_approved()
    await rel.then_completed()
    await _then_routing_undone(kube, namespace)
    await rel.then_pods({V2: 3}, what="3 v2 pods after completion")
    assert V1 not in await rel.pod_images()
