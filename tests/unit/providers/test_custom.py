"""Custom providers: shipped Istio and Gloo scripts, the original-spec contract, users' scripts, errors."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from tests.seeds import seed_documents
from tests.unit.providers.builders import CONFIG
from tests.unit.providers.custom_builders import (
    GLOO_VS,
    ISTIO_DR,
    ISTIO_VS,
    destination_rule,
    gloo_virtual_service,
    istio_virtual_service,
    kube,
    match,
    observed_custom,
    ref,
    written,
)

from graylane.api.gateway import HTTPHeaderFilter
from graylane.planner.changes import CustomKind, Patch
from graylane.planner.routing import RouteIntent
from graylane.providers.traffic.base import Capability, RoutingConfig, RoutingError
from graylane.providers.traffic.custom import ORIGINAL_SPEC_ANNOTATION, merge_patch

HEADER = match(headers=[{"name": "x-canary", "value": "always"}])
QUERY = match(queryParams=[{"name": "env", "type": "RegularExpression", "value": "gr(a|e)y"}])
PATH = match(path={"type": "PathPrefix", "value": "/beta"})


def step(obj: dict[str, Any], kind: CustomKind, route: RouteIntent, **kw: Any) -> dict[str, Any]:
    """One pass: the provider's single Patch, applied as the API server would."""
    obs = observed_custom([ref(kind, obj["metadata"]["name"])], {(kind, obj["metadata"]["name"]): obj}, **kw)
    changes = obs.router.ensure_routes(route, obs)
    assert len(changes) == 1
    return written(obj, changes[0])


def passes(obj: dict[str, Any], kind: CustomKind, route: RouteIntent) -> list[Any]:
    obs = observed_custom([ref(kind, obj["metadata"]["name"])], {(kind, obj["metadata"]["name"]): obj})
    return obs.router.ensure_routes(route, obs)


def finalised(obj: dict[str, Any], kind: CustomKind) -> dict[str, Any]:
    obs = observed_custom([ref(kind, obj["metadata"]["name"])], {(kind, obj["metadata"]["name"]): obj})
    changes = obs.router.finalise_routes(obs)
    assert len(changes) == 1
    return written(obj, changes[0])


# -- Istio VirtualService ----------------------------------------------------------------------------


def test_istio_weight_scales_the_stable_routes_without_match_and_adds_the_canary() -> None:
    original = istio_virtual_service()
    after = step(original, ISTIO_VS, RouteIntent(weight=20))
    http = after["spec"]["http"]
    assert http[0] == original["spec"]["http"][0], "a route with match conditions is left alone"
    assert http[1]["route"] == [
        {"destination": {"host": "web.ns1.svc.cluster.local", "port": {"number": 80}}, "weight": 64},
        {"destination": {"host": "legacy"}, "weight": 16},
        {"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 20},
    ]
    assert after["spec"]["tcp"][0]["route"] == [
        {"destination": {"host": "web", "port": {"number": 9000}}, "weight": 80},
        {"destination": {"host": "web-canary", "port": {"number": 9000}}, "weight": 20},
    ]
    stored = json.loads(after["metadata"]["annotations"][ORIGINAL_SPEC_ANNOTATION])
    assert stored == {"spec": original["spec"], "labels": {"app": "web"}, "annotations": {"team": "a"}}
    assert after["metadata"]["labels"] == {"app": "web"}
    assert after["metadata"]["annotations"]["team"] == "a"


def test_istio_matches_go_first_in_reverse_step_order_as_kruise_writes_them() -> None:
    modifier = HTTPHeaderFilter.model_validate(
        {"set": [{"name": "x-env", "value": "gray"}], "remove": ["x-a"]}
    )
    route = RouteIntent(matches=(HEADER, QUERY, PATH), request_header_modifier=modifier)
    original = istio_virtual_service()
    after = step(original, ISTIO_VS, route)
    http = after["spec"]["http"]
    canary = [{"destination": {"host": "web-canary"}}]
    headers = {"request": {"set": {"x-env": "gray"}, "remove": ["x-a"]}}
    assert http[:3] == [
        {"match": [{"uri": {"prefix": "/beta"}}], "route": canary, "headers": headers},
        {"match": [{"queryParams": {"env": {"regex": "gr(a|e)y"}}}], "route": canary, "headers": headers},
        {"match": [{"headers": {"x-canary": {"exact": "always"}}}], "route": canary, "headers": headers},
    ]
    assert http[3:] == original["spec"]["http"], "the original routes follow, unchanged"


def test_istio_without_a_canary_service_routes_to_the_canary_subset() -> None:
    same = RoutingConfig(namespace=CONFIG.namespace, stable_service="web", canary_service="web", owner={})
    after = step(istio_virtual_service(), ISTIO_VS, RouteIntent(matches=(HEADER,)), config=same)
    assert after["spec"]["http"][0]["route"] == [{"destination": {"host": "web", "subset": "canary"}}]


def test_istio_every_step_starts_from_the_original_and_the_restore_is_exact() -> None:
    original = istio_virtual_service()
    after_20 = step(original, ISTIO_VS, RouteIntent(weight=20))
    assert passes(after_20, ISTIO_VS, RouteIntent(weight=20)) == [], "done: a pass found nothing to change"
    after_60 = step(after_20, ISTIO_VS, RouteIntent(weight=60))
    weights = [d["weight"] for d in after_60["spec"]["http"][1]["route"]]
    assert weights == [32, 8, 60], "scaled from the original 80/20, not from the 20% step"
    after_match = step(after_60, ISTIO_VS, RouteIntent(matches=(HEADER,)))
    assert after_match["spec"]["http"][1:] == original["spec"]["http"]

    restored = finalised(after_match, ISTIO_VS)
    assert restored["spec"] == original["spec"]
    assert restored["metadata"] == {**original["metadata"], "resourceVersion": "100"}
    assert passes(restored, ISTIO_VS, RouteIntent(weight=20)) != [], "a new release starts afresh"


def test_finalise_without_the_annotation_changes_nothing() -> None:
    obs = observed_custom([ref(ISTIO_VS, "web-vs")], {(ISTIO_VS, "web-vs"): istio_virtual_service()})
    assert obs.router.finalise_routes(obs) == []
    assert observed_custom([ref(ISTIO_VS, "web-vs")], {}).router.finalise_routes(obs) == []


def test_destination_rule_gains_the_canary_subset_once() -> None:
    after = step(destination_rule(), ISTIO_DR, RouteIntent())
    assert after["spec"]["subsets"] == [
        {"name": "stable", "labels": {"version": "base"}},
        {"name": "canary", "labels": {"istio.service.tag": "gray"}},
    ]
    assert passes(after, ISTIO_DR, RouteIntent()) == []
    assert finalised(after, ISTIO_DR)["spec"] == destination_rule()["spec"]


def test_a_destination_rule_alone_routes_nothing() -> None:
    """It only adds a subset: a step's weight needs a VirtualService (or another provider) beside it."""
    with pytest.raises(
        RoutingError, match=r"the DestinationRule.networking.istio.io Lua script cannot route by weight"
    ):
        passes(destination_rule(), ISTIO_DR, RouteIntent(weight=20))


def test_beside_a_virtual_service_the_destination_rule_gets_its_subset_whatever_the_step() -> None:
    vs, dr = istio_virtual_service(), destination_rule()
    refs = [ref(ISTIO_VS, vs["metadata"]["name"]), ref(ISTIO_DR, dr["metadata"]["name"])]
    objects = {(ISTIO_VS, vs["metadata"]["name"]): vs, (ISTIO_DR, dr["metadata"]["name"]): dr}
    obs = observed_custom(refs, objects)
    changes = obs.router.ensure_routes(RouteIntent(weight=20, matches=(HEADER,)), obs)
    assert len(changes) == 2
    assert written(dr, changes[1])["spec"]["subsets"][-1] == {
        "name": "canary",
        "labels": {"istio.service.tag": "gray"},
    }


# -- Gloo Edge VirtualService: the two-phase canary --------------------------------------------------

STAGE = match(headers=[{"name": "stage", "value": "canary"}])


def test_gloo_two_phase_canary_step_by_step() -> None:
    original = gloo_virtual_service()
    static, main = original["spec"]["virtualHost"]["routes"]

    # Phase one: requests with `stage: canary` go to the new version, everything else to the old.
    phase_one = step(original, GLOO_VS, RouteIntent(matches=(STAGE,)))
    routes = phase_one["spec"]["virtualHost"]["routes"]
    assert routes == [
        static,
        {
            "matchers": [{"prefix": "/", "headers": [{"name": "stage", "value": "canary"}]}],
            "routeAction": {"single": kube("web-canary")},
        },
        main,
    ]

    # Phase two: weighted destinations, 0 (a blue-green step; canary steps start above 0%), 50, 100.
    for weight in (0, 50, 100):
        phase_two = step(phase_one, GLOO_VS, RouteIntent(weight=weight))
        routes = phase_two["spec"]["virtualHost"]["routes"]
        assert routes[0] == static
        assert routes[1] == {
            "matchers": [{"prefix": "/"}],
            "routeAction": {
                "multi": {
                    "destinations": [
                        {"destination": kube("web"), "weight": 100 - weight},
                        {"destination": kube("web-canary"), "weight": weight},
                    ]
                }
            },
        }
        assert len(routes) == 2, "the phase-one header route is gone"
        phase_one = phase_two

    # Completion: the original single route to the stable Service (which then selects the new pods).
    restored = finalised(phase_one, GLOO_VS)
    assert restored["spec"] == original["spec"]
    assert ORIGINAL_SPEC_ANNOTATION not in restored["metadata"].get("annotations", {})


def _seed_vs(name: str) -> dict[str, Any]:
    [doc] = seed_documents(name)
    return {**doc, "metadata": {**doc["metadata"], "resourceVersion": "1"}}


def test_gloo_upstream_subsets_through_the_guides_states() -> None:
    """Seed 001: the guide's VirtualService objects, one per step, from its vs-1 and the v2 pod labels."""
    v2 = {"app": "echo", "version": "v2"}
    original = _seed_vs("001-gloo-05-vs-1-subset-v1.yaml")
    kw: dict[str, Any] = {
        "pod_template_labels": v2,
        "config": dataclasses.replace(CONFIG, stable_service="echo"),
    }
    states = [
        (RouteIntent(matches=(STAGE,)), "001-gloo-08-vs-phase2-weights-100-0.yaml"),
        (RouteIntent(weight=50, matches=(STAGE,)), "001-gloo-09-vs-phase2-50-50.yaml"),
        (RouteIntent(weight=100, matches=(STAGE,)), "001-gloo-10-vs-phase2-0-100.yaml"),
    ]
    current = original
    for route, seed in states:
        current = step(current, GLOO_VS, route, **kw)
        assert current["spec"] == _seed_vs(seed)["spec"], seed
    obs = observed_custom([ref(GLOO_VS, "echo")], {(GLOO_VS, "echo"): current}, **kw)
    [change] = obs.router.finalise_routes(obs)
    done = written(current, change)
    assert done["spec"] == _seed_vs("001-gloo-11-vs-decommissioned-v1.yaml")["spec"]
    assert ORIGINAL_SPEC_ANNOTATION not in done["metadata"].get("annotations", {})
    # A rollback (the template back on v1) ends on the original route.
    back = observed_custom(
        [ref(GLOO_VS, "echo")], {(GLOO_VS, "echo"): current}, pod_template_labels={"version": "v1"}
    )
    assert written(current, back.router.finalise_routes(back)[0])["spec"] == original["spec"]
    # New pods without a new label value cannot be told apart: refused with the reason.
    same = {**kw, "pod_template_labels": {"app": "echo", "version": "v1"}}
    with pytest.raises(RoutingError, match=r"carry the stable subset's labels \(version=v1\)"):
        step(original, GLOO_VS, RouteIntent(weight=50), **same)


def test_gloo_matches_combine_with_each_route_matcher_and_a_path_replaces_the_path() -> None:
    original = gloo_virtual_service()
    original["spec"]["virtualHost"]["routes"][1]["matchers"] = [{"prefix": "/api", "methods": ["GET"]}]
    original["spec"]["virtualHost"]["routes"][1]["name"] = "api"
    after = step(original, GLOO_VS, RouteIntent(matches=(QUERY, PATH)))
    canary = after["spec"]["virtualHost"]["routes"][1]
    assert canary["name"] == "api-canary"
    assert canary["matchers"] == [
        {
            "prefix": "/api",
            "methods": ["GET"],
            "queryParameters": [{"name": "env", "value": "gr(a|e)y", "regex": True}],
        },
        {"prefix": "/beta", "methods": ["GET"]},
    ]


def test_gloo_refuses_what_it_cannot_route_and_needs_a_canary_service() -> None:
    modifier = HTTPHeaderFilter.model_validate({"set": [{"name": "x-env", "value": "gray"}]})
    obj = gloo_virtual_service()
    with pytest.raises(
        RoutingError,
        match=r"VirtualService.gateway.solo.io web-gloo: the VirtualService.gateway.solo.io Lua script "
        r"cannot route by request header modifier",
    ):
        passes(obj, GLOO_VS, RouteIntent(matches=(STAGE,), request_header_modifier=modifier))
    same = RoutingConfig(namespace=CONFIG.namespace, stable_service="web", canary_service="web", owner={})
    with pytest.raises(RoutingError, match="needs a canary Service, but disableGenerateCanaryService is set"):
        step(obj, GLOO_VS, RouteIntent(weight=50), config=same)


def test_capabilities_are_what_any_of_the_kinds_can_do() -> None:
    """Each object does what it can (Kruise); a feature none can express is refused."""
    istio = observed_custom([ref(ISTIO_VS, "a"), ref(ISTIO_DR, "b")], {}).router.network
    both = observed_custom([ref(ISTIO_VS, "a"), ref(GLOO_VS, "b")], {}).router.network
    user = observed_custom([ref(CustomKind("apisix.apache.org", "ApisixRoute"), "r")], {}).router.network
    assert Capability.REQUEST_HEADER_MODIFIER in istio.capabilities
    assert Capability.REQUEST_HEADER_MODIFIER in both.capabilities, "Istio can, Gloo cannot"
    assert Capability.COOKIE_MATCH not in istio.capabilities
    assert Capability.COOKIE_MATCH not in both.capabilities
    assert user.capabilities == frozenset(Capability), "a user's script is assumed capable"
    assert (
        both.label == "customNetworkRefs (VirtualService.networking.istio.io, VirtualService.gateway.solo.io)"
    )


# -- users' scripts and errors -----------------------------------------------------------------------

APISIX = CustomKind("apisix.apache.org", "ApisixRoute")
APISIX_KEY = "lua.traffic.routing.ApisixRoute.apisix.apache.org"
APISIX_SCRIPT = """
local data = obj.data
for _, rule in ipairs(data.spec.http) do
  for _, backend in ipairs(rule.backends) do
    if backend.serviceName == obj.stableService then backend.weight = obj.stableWeight end
  end
  table.insert(rule.backends, {serviceName = obj.canaryService, servicePort = 80, weight = obj.canaryWeight})
end
data.labels["canary"] = "on"
return data
"""


def apisix_route() -> dict[str, Any]:
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "web-route", "namespace": "ns1", "resourceVersion": "3"},
        "spec": {"http": [{"name": "r1", "backends": [{"serviceName": "web", "servicePort": 80}]}]},
    }


def test_a_users_script_from_the_configmap_drives_any_kind() -> None:
    obj = apisix_route()
    after = step(
        obj, APISIX, RouteIntent(weight=30), lua_scripts={APISIX_KEY: APISIX_SCRIPT}, watched={APISIX}
    )
    assert after["spec"]["http"][0]["backends"] == [
        {"serviceName": "web", "servicePort": 80, "weight": 70},
        {"serviceName": "web-canary", "servicePort": 80, "weight": 30},
    ]
    assert after["metadata"]["labels"] == {"canary": "on"}
    obs = observed_custom([ref(APISIX, "web-route", "v2")], {(APISIX, "web-route"): after}, watched={APISIX})
    restored = written(after, obs.router.finalise_routes(obs)[0])
    assert restored["spec"] == obj["spec"]
    assert "labels" not in restored["metadata"]


def test_the_configmap_script_wins_over_the_shipped_one() -> None:
    script = "obj.data.spec.hosts = {'user.example.com'}\nreturn obj.data"
    scripts = {"lua.traffic.routing.VirtualService.networking.istio.io": script}
    original = istio_virtual_service()
    after = step(original, ISTIO_VS, RouteIntent(weight=20), lua_scripts=scripts)
    assert after["spec"]["hosts"] == ["user.example.com"]
    assert after["spec"]["http"] == original["spec"]["http"], "the shipped script did not run"


def _error(kind: CustomKind, obj: dict[str, Any] | None, scripts: dict[str, str], **kw: Any) -> str:
    objects = {(kind, "web-route"): obj} if obj is not None else {}
    obs = observed_custom([ref(kind, "web-route")], objects, lua_scripts=scripts, **kw)
    with pytest.raises(RoutingError) as err:
        obs.router.ensure_routes(RouteIntent(weight=30), obs)
    return str(err.value)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            None,
            f"ApisixRoute.apisix.apache.org web-route: no Lua script for ApisixRoute.apisix.apache.org: "
            f"set key {APISIX_KEY} in ConfigMap kruise-rollout-configuration",
        ),
        (
            "return obj.data[",
            f"ApisixRoute.apisix.apache.org web-route: Lua script {APISIX_KEY} "
            "(ConfigMap kruise-rollout-configuration) failed: ",
        ),
        ("while true do end", "failed: time limit exceeded (1.0 s)"),
        ("return 5", "must return a table with spec, labels and annotations"),
        ("return {spec = 'x'}", "returned a spec that is not a table"),
        ("return {spec = {}, labels = {a = 1}}", "returned labels with non-string values for: a"),
    ],
)
def test_a_broken_script_names_the_object_and_the_key(script: str | None, message: str) -> None:
    scripts = {APISIX_KEY: script} if script is not None else {}
    assert message in _error(APISIX, apisix_route(), scripts, watched={APISIX})


def test_a_missing_object_or_an_unwatched_kind_is_named() -> None:
    scripts = {APISIX_KEY: APISIX_SCRIPT}
    assert (
        _error(APISIX, None, scripts, watched={APISIX}) == "ApisixRoute.apisix.apache.org web-route not found"
    )
    assert (
        "cannot be read: graylane watches a custom kind once its CRD is established and a Lua script exists"
        in (_error(APISIX, None, scripts, watched=frozenset()))
    )


def test_a_corrupt_original_annotation_is_reported() -> None:
    obj = istio_virtual_service()
    obj["metadata"]["annotations"][ORIGINAL_SPEC_ANNOTATION] = "{not json"
    with pytest.raises(
        RoutingError, match=f"web-vs: annotation {ORIGINAL_SPEC_ANNOTATION} is not valid JSON"
    ):
        passes(obj, ISTIO_VS, RouteIntent(weight=20))


def test_the_observed_object_is_never_mutated() -> None:
    obj = istio_virtual_service()
    before = copy.deepcopy(obj)
    passes(obj, ISTIO_VS, RouteIntent(matches=(HEADER,)))
    passes(obj, ISTIO_VS, RouteIntent(weight=40))
    assert obj == before


@pytest.mark.parametrize(
    ("current", "desired", "patch"),
    [
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1}}, {"a": {"y": None}}),
        ({"a": [1, 2]}, {"a": [2]}, {"a": [2]}),
        ({"a": {"x": 1}}, {"a": [1]}, {"a": [1]}),
        ({}, {"a": {"x": 1}}, {"a": {"x": 1}}),
    ],
)
def test_merge_patch(current: dict[str, Any], desired: dict[str, Any], patch: dict[str, Any]) -> None:
    assert merge_patch(current, desired) == patch


def test_writes_are_guarded_merge_patches_of_only_what_differs() -> None:
    obj = istio_virtual_service()
    [change] = passes(obj, ISTIO_VS, RouteIntent(weight=20))
    assert isinstance(change, Patch)
    assert change.patch_type == "merge"
    assert change.resource == ISTIO_VS
    assert set(change.patch["spec"]) == {"http", "tcp"}, "hosts and gateways are not rewritten"
    assert set(change.patch["metadata"]) == {"resourceVersion", "annotations"}
