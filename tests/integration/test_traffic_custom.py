"""Issue acceptance: customNetworkRefs through Lua — Istio's real CRDs, a user's script, and failures.

Every object graylane writes here is validated by the API server against the projects' own CRD schemas.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.observe.traffic import discover_custom_kinds
from graylane.planner.changes import CustomKind
from graylane.webhook.install import VALIDATING_CONFIGURATION
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.custom_fixtures import (
    GRPC_KEY,
    GRPC_ROUTE,
    GRPC_SCRIPT,
    ISTIO_DR,
    ISTIO_VS,
    controller_sees_custom_kinds,
    custom_controller,
    destination_rule,
    gloo_crds,
    grpc_route,
    istio_crds,
    virtual_service,
)
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import (
    CONFIG_NAMESPACE,
    canary_rollout,
    gateway_api_crds,
    service,
    set_lua_script,
    warning_events,
)
from tests.integration.waiting import eventually
from tests.integration.webhook_fixtures import create_unvalidated

__all__ = [  # fixtures
    "controller_sees_custom_kinds",
    "custom_controller",
    "gateway_api_crds",
    "gloo_crds",
    "istio_crds",
]
pytestmark = pytest.mark.usefixtures("custom_controller")

ORIGINAL_SPEC = "rollouts.kruise.io/original-spec-configuration"
ISTIO_REFS = {
    "customNetworkRefs": [
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "web-vs"},
        {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule", "name": "web-dr"},
    ],
    "gracePeriodSeconds": 1,
}
MATCHES = [
    {"headers": [{"name": "x-canary", "value": "always"}]},
    {"queryParams": [{"name": "env", "type": "RegularExpression", "value": "gr(a|e)y"}]},
    {"path": {"type": "PathPrefix", "value": "/beta"}},
]


async def _get(kube: KubeClient, res: r.Resource, name: str, namespace: str) -> Obj:
    return await kube.get(res, name, namespace)


def _main_route(vs: Obj) -> list[tuple[str, int | None]]:
    main = next(rule for rule in vs["spec"]["http"] if rule.get("name") == "main")
    return [(d["destination"]["host"], d.get("weight")) for d in main["route"]]


async def test_istio_weights_then_matches_then_exact_restore(kube: KubeClient, namespace: str) -> None:
    steps: list[dict[str, Any]] = [
        {"replicas": 1, "traffic": "20%", "pause": {}},
        {"replicas": "50%", "traffic": "50%", "pause": {}},
        {"replicas": "50%", "matches": MATCHES, "pause": {}},
        {"replicas": "100%"},
    ]
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(ISTIO_VS, virtual_service(namespace))
    await kube.create(ISTIO_DR, destination_rule(namespace))
    original_vs = await _get(kube, ISTIO_VS, "web-vs", namespace)
    original_dr = await _get(kube, ISTIO_DR, "web-dr", namespace)
    await rel.given_deployment(replicas=4)
    await rel.given_rollout(canary_rollout(ISTIO_REFS, steps))

    await rel.when_image(V2)
    for index, weight in ((1, 20), (2, 50)):
        await rel.then_paused_at(index)
        want = [("web", 100 - weight), ("web-canary", weight)]
        vs = await eventually(
            lambda: _get(kube, ISTIO_VS, "web-vs", namespace),
            lambda o, w=want: _main_route(o) == w,  # type: ignore[misc]
            what=f"VirtualService weights {want}",
        )
        static = vs["spec"]["http"][0]
        assert static == original_vs["spec"]["http"][0], "a route with match conditions keeps its traffic"
        await rel.when_approved()

    await rel.then_paused_at(3)
    vs = await eventually(
        lambda: _get(kube, ISTIO_VS, "web-vs", namespace),
        lambda o: len(o["spec"]["http"]) == 5,
        what="three canary match routes first",
    )
    canary = [{"destination": {"host": "web-canary"}}]
    # Kruise's script puts each match's route at the top in turn: path, queryParams, headers here.
    assert [(rule["match"], rule["route"]) for rule in vs["spec"]["http"][:3]] == [
        ([{"uri": {"prefix": "/beta"}}], canary),
        ([{"queryParams": {"env": {"regex": "gr(a|e)y"}}}], canary),
        ([{"headers": {"x-canary": {"exact": "always"}}}], canary),
    ]
    assert vs["spec"]["http"][3:] == original_vs["spec"]["http"], "weights are back to the original"
    dr = await _get(kube, ISTIO_DR, "web-dr", namespace)
    assert {"name": "canary", "labels": {"istio.service.tag": "gray"}} in dr["spec"]["subsets"]
    assert ORIGINAL_SPEC in dr["metadata"]["annotations"]

    await rel.when_approved()
    await rel.then_completed()
    for res, name, original in ((ISTIO_VS, "web-vs", original_vs), (ISTIO_DR, "web-dr", original_dr)):
        restored = await eventually(
            lambda res=res, name=name: _get(kube, res, name, namespace),  # type: ignore[misc]
            lambda o, before=original: o["spec"] == before["spec"],  # type: ignore[misc]
            what=f"{name} restored",
        )
        assert restored["metadata"].get("labels") == original["metadata"].get("labels")
        assert restored["metadata"].get("annotations") == original["metadata"].get("annotations")
    assert await kube.get_or_none(r.SERVICE, "web-canary", namespace) is None
    # The one route left sends to the stable Service, which now selects only the new version's pods.
    stable = await kube.get(r.SERVICE, "web", namespace)
    selector = ",".join(f"{k}={v}" for k, v in stable["spec"]["selector"].items())
    pods = (await kube.list(r.POD, namespace, label_selector=selector))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert live
    assert {p["spec"]["containers"][0]["image"] for p in live} == {V2}


async def test_a_users_script_from_the_configmap_drives_another_crd(kube: KubeClient, namespace: str) -> None:
    routing = {
        "customNetworkRefs": [
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "name": "web-grpc"}
        ],
        "gracePeriodSeconds": 1,
    }
    steps: list[dict[str, Any]] = [{"replicas": 1, "traffic": "30%", "pause": {}}, {"replicas": "100%"}]
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(GRPC_ROUTE, grpc_route(namespace))
    original = await _get(kube, GRPC_ROUTE, "web-grpc", namespace)
    await rel.given_deployment(replicas=3)
    await rel.given_rollout(canary_rollout(routing, steps))

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    route = await _get(kube, GRPC_ROUTE, "web-grpc", namespace)
    refs = [(ref["name"], ref["weight"]) for ref in route["spec"]["rules"][0]["backendRefs"]]
    assert refs == [("web", 70), ("web-canary", 30)]

    await rel.when_approved()
    await rel.then_completed()
    await eventually(
        lambda: _get(kube, GRPC_ROUTE, "web-grpc", namespace),
        lambda o: (
            o["spec"] == original["spec"] and ORIGINAL_SPEC not in (o["metadata"].get("annotations") or {})
        ),
        what="the original GRPCRoute",
    )


USER_VS_SCRIPT = """
local spec = obj.data.spec
table.insert(spec.http, 1, {name = "user-script", route = {{destination = {host = obj.canaryService}}}})
return obj.data
"""


async def test_a_users_configmap_script_replaces_the_shipped_one(kube: KubeClient, namespace: str) -> None:
    """Issue 15, item 6: the ConfigMap key for a kind with a shipped script wins over the shipped one."""
    key = "lua.traffic.routing.VirtualService.networking.istio.io"
    routing = {"customNetworkRefs": [ISTIO_REFS["customNetworkRefs"][0]], "gracePeriodSeconds": 1}
    steps: list[dict[str, Any]] = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}]
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(ISTIO_VS, virtual_service(namespace))
    original = await _get(kube, ISTIO_VS, "web-vs", namespace)
    await set_lua_script(kube, key, USER_VS_SCRIPT)
    try:
        await rel.given_deployment(replicas=3)
        await rel.given_rollout(canary_rollout(routing, steps))
        await rel.when_image(V2)
        await rel.then_paused_at(1)
        vs = await eventually(
            lambda: _get(kube, ISTIO_VS, "web-vs", namespace),
            lambda o: o["spec"]["http"][0].get("name") == "user-script",
            what="the user's script's route first",
        )
        assert vs["spec"]["http"][1:] == original["spec"]["http"], "the shipped script did not run"
        await rel.when_approved()
        await rel.then_completed()
        await eventually(
            lambda: _get(kube, ISTIO_VS, "web-vs", namespace),
            lambda o: o["spec"] == original["spec"],
            what="the VirtualService restored",
        )
    finally:
        await set_lua_script(kube, key, None)


async def _blocked(kube: KubeClient, namespace: str, routing: dict[str, Any], reason: str) -> Obj:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await rel.given_deployment(replicas=3)
    steps = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}]
    await rel.given_rollout(canary_rollout({**routing, "gracePeriodSeconds": 1}, steps))

    await rel.when_image(V2)
    ro = await eventually(
        rel.rollout,
        lambda o: reason in o.get("status", {}).get("message", ""),
        what=f"status.message: {reason}",
    )
    await eventually(
        lambda: warning_events(kube, namespace),
        lambda found: any(reason in e.get("message", "") for e in found),
        what=f"a Warning Event: {reason}",
    )
    assert await rel.pod_images() == {V1: 3}, "the stable version keeps serving everything"
    assert await rel.canary_deployments() == []
    return ro


async def test_a_broken_user_script_blocks_with_its_key_then_runs_once_fixed(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(GRPC_ROUTE, grpc_route(namespace))
    original = await _get(kube, GRPC_ROUTE, "web-grpc", namespace)
    ref = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "name": "web-grpc"}
    await set_lua_script(kube, GRPC_KEY, "local data = obj.data\nreturn data.spec[")
    try:
        reason = (
            f"GRPCRoute.gateway.networking.k8s.io web-grpc: Lua script {GRPC_KEY} "
            "(ConfigMap kruise-rollout-configuration) failed"
        )
        await _blocked(kube, namespace, {"customNetworkRefs": [ref]}, reason)
        unchanged = await _get(kube, GRPC_ROUTE, "web-grpc", namespace)
        assert unchanged["spec"] == original["spec"], "no weight reached the route"
        await set_lua_script(kube, GRPC_KEY, GRPC_SCRIPT)
        await Release(kube, namespace).then_paused_at(1)
    finally:
        await set_lua_script(kube, GRPC_KEY, GRPC_SCRIPT)


async def test_a_kind_without_a_script_and_a_missing_object_are_named(
    kube: KubeClient, namespace: str
) -> None:
    kind = f"Route{uuid.uuid4().hex[:6]}"
    ref = {"apiVersion": "example.com/v1", "kind": kind, "name": "r"}
    key = f"lua.traffic.routing.{kind}.example.com"
    await _blocked(
        kube,
        namespace,
        {"customNetworkRefs": [ref]},
        f"{kind}.example.com r: no Lua script for {kind}.example.com: set key {key} in ConfigMap",
    )


async def test_a_missing_virtual_service_is_named(kube: KubeClient, namespace: str) -> None:
    ref = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "absent"}
    ro = await _blocked(
        kube, namespace, {"customNetworkRefs": [ref]}, "VirtualService.networking.istio.io absent not found"
    )
    assert ro["status"]["message"] == (
        "traffic routing is not ready: VirtualService.networking.istio.io absent not found"
    )


async def test_webhook_refuses_a_step_the_script_cannot_route(kube: KubeClient, namespace: str) -> None:
    steps = [
        {"replicas": 1, "matches": [{"headers": [{"name": "canary-by-cookie", "value": "demo"}]}]},
        {"replicas": "100%"},
    ]
    obj = canary_rollout(ISTIO_REFS, steps)
    obj["metadata"]["namespace"] = namespace
    with pytest.raises(ApiError) as err:
        await kube.create(r.ROLLOUT, obj)
    assert err.value.code == 422
    assert (
        "Spec.Strategy.Canary.Steps[0].Matches[0].Headers[0]: Forbidden: the customNetworkRefs "
        "(VirtualService.networking.istio.io, DestinationRule.networking.istio.io) traffic provider "
        "cannot route by cookie match"
    ) in err.value.message


async def test_a_step_the_script_cannot_route_keeps_all_traffic_on_stable(
    kube: KubeClient, namespace: str, custom_controller: ControllerProcess
) -> None:
    """A Rollout admitted without graylane's rule (e.g. under Kruise's webhook) is refused at run time."""
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(ISTIO_VS, virtual_service(namespace))
    original = await _get(kube, ISTIO_VS, "web-vs", namespace)
    await rel.given_deployment(replicas=3)
    cookie = [{"headers": [{"name": "canary-by-cookie", "value": "demo"}]}]
    steps = [{"replicas": 1, "matches": cookie, "pause": {}}, {"replicas": "100%"}]
    ref = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "web-vs"}
    obj = canary_rollout({"customNetworkRefs": [ref], "gracePeriodSeconds": 1}, steps)
    obj["metadata"]["namespace"] = namespace
    custom_controller.stop()  # it would put its webhook configuration back
    await kube.delete(r.VALIDATING_WEBHOOK, VALIDATING_CONFIGURATION)
    try:
        await create_unvalidated(kube, r.ROLLOUT, obj)
    finally:
        custom_controller.start()  # re-installs the webhook configurations once it leads again
        custom_controller.wait_ready()
        custom_controller.wait_installed()
    await eventually(
        rel.rollout,
        lambda ro: (ro.get("status", {}).get("canaryStatus") or {}).get("currentStepState") == "Completed",
        what="Rollout Healthy with its first deploy completed",
    )
    await eventually(
        rel.deployment,
        lambda d: "rollouts.kruise.io/workload-type" in d["metadata"].get("labels", {}),
        what="workload labelled for the webhook",
    )

    await rel.when_image(V2)
    reason = (
        "VirtualService.networking.istio.io web-vs: the VirtualService.networking.istio.io Lua script "
        "cannot route by cookie match"
    )
    await eventually(
        rel.rollout,
        lambda o: reason in o.get("status", {}).get("message", ""),
        what=f"status.message: {reason}",
    )
    await eventually(
        lambda: warning_events(kube, namespace),
        lambda found: any(reason in e.get("message", "") for e in found),
        what=f"a Warning Event: {reason}",
    )
    current = await _get(kube, ISTIO_VS, "web-vs", namespace)
    assert current["spec"] == original["spec"], "every request still goes to the stable Service"
    assert ORIGINAL_SPEC not in (current["metadata"].get("annotations") or {})


async def test_discovery_maps_each_scripted_kind_to_its_served_resource(kube: KubeClient) -> None:
    found = await discover_custom_kinds(kube, CONFIG_NAMESPACE)
    istio = "networking.istio.io"
    assert found[CustomKind(istio, "VirtualService")] == r.Resource(
        istio, "v1", "virtualservices", "VirtualService"
    )
    assert found[CustomKind(istio, "DestinationRule")].plural == "destinationrules"
    assert found[CustomKind("gateway.networking.k8s.io", "GRPCRoute")] == GRPC_ROUTE, "the user's kind"
    assert found[CustomKind("gateway.solo.io", "VirtualService")] == r.Resource(
        "gateway.solo.io", "v1", "virtualservices", "VirtualService"
    ), "same Kind and plural as Istio's, another group"
