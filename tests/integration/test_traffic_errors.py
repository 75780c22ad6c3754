"""Issue acceptance: a missing Ingress or HTTPRoute, or a broken user Lua script, keeps the stable version
serving everything, with the reason in status.message and a Warning Event."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import (
    canary_rollout,
    controller_sees_gateway_api,
    gateway_api_crds,
    ingress,
    service,
    set_lua_script,
    traffic_controller,
    warning_events,
)
from tests.integration.waiting import eventually

__all__ = ["controller_sees_gateway_api", "gateway_api_crds", "traffic_controller"]  # fixtures
pytestmark = pytest.mark.usefixtures("traffic_controller")

STEPS = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}]


async def _blocked(kube: KubeClient, namespace: str, routing: dict[str, Any], reason: str) -> Obj:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(canary_rollout(routing, STEPS))

    await rel.when_image(V2)
    ro = await eventually(
        rel.rollout,
        lambda o: reason in o.get("status", {}).get("message", ""),
        what=f"status.message: {reason}",
    )
    events = await eventually(
        lambda: warning_events(kube, namespace),
        lambda found: any(reason in e.get("message", "") for e in found),
        what=f"a Warning Event: {reason}",
    )
    assert events[0]["reason"] in ("TrafficRoutingNotReady", "TrafficRoutingFailed")
    conditions = {c["type"]: c for c in ro["status"]["conditions"]}
    assert conditions["Progressing"]["reason"] == "Initializing"
    assert await kube.get_or_none(r.INGRESS, "web-canary", namespace) is None, "no canary Ingress, no weight"
    assert await rel.pod_images() == {V1: 3}, "the stable version keeps serving everything"
    assert await rel.canary_deployments() == []
    return ro


async def test_missing_ingress(kube: KubeClient, namespace: str) -> None:
    ro = await _blocked(kube, namespace, {"ingress": {"name": "absent"}}, "Ingress absent not found")
    assert ro["status"]["message"] == "traffic routing is not ready: Ingress absent not found"


async def test_missing_http_route(kube: KubeClient, namespace: str) -> None:
    await _blocked(kube, namespace, {"gateway": {"httpRouteName": "absent"}}, "HTTPRoute absent not found")


async def test_broken_user_lua_script_then_fixed(kube: KubeClient, namespace: str) -> None:
    class_type = f"broken-{uuid.uuid4().hex[:6]}"
    key = f"lua.traffic.routing.ingress.{class_type}"
    await kube.create(r.INGRESS, ingress(namespace))
    await set_lua_script(kube, key, "annotations = obj.annotations\nreturn annotations[")
    try:
        routing = {"ingress": {"name": "web", "classType": class_type}, "gracePeriodSeconds": 1}
        await _blocked(
            kube, namespace, routing, f"Lua script {key} (ConfigMap kruise-rollout-configuration) failed"
        )
        fixed = 'local a = obj.annotations or {}\na["example.com/weight"] = obj.weight\nreturn a'
        await set_lua_script(kube, key, fixed)
        rel = Release(kube, namespace)
        await rel.then_paused_at(1)
        canary = await kube.get(r.INGRESS, "web-canary", namespace)
        assert canary["metadata"]["annotations"]["example.com/weight"] == "20"
    finally:
        await set_lua_script(kube, key, None)


async def test_webhook_refuses_a_step_the_provider_cannot_route(kube: KubeClient, namespace: str) -> None:
    steps = [
        {"replicas": 1, "matches": [{"queryParams": [{"name": "env", "value": "gray"}]}]},
        {"replicas": "100%"},
    ]
    obj = canary_rollout({"ingress": {"name": "web"}}, steps)
    obj["metadata"]["namespace"] = namespace
    with pytest.raises(ApiError) as err:
        await kube.create(r.ROLLOUT, obj)
    assert err.value.code == 422
    assert (
        "Spec.Strategy.Canary.Steps[0].Matches[0].QueryParams: Forbidden: "
        "the Ingress nginx traffic provider cannot route by query parameter match"
    ) in err.value.message
