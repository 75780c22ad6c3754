"""Gateway API provider: HTTPRoute weights, match rules, and restoring the original route exactly."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.unit.providers.builders import CONFIG, ROUTE_RULES, http_route, observed, routing

from graylane.api.gateway import HTTPHeaderFilter
from graylane.api.rollout_v1beta1 import HttpRouteMatch
from graylane.planner.changes import ObjectKind, Patch
from graylane.planner.routing import RouteIntent
from graylane.providers.traffic.base import RoutingError
from graylane.providers.traffic.gateway_api import (
    ORIGINAL_RULES_ANNOTATION,
    GatewayProvider,
    introduced,
    normalised,
    parse_rules,
    references_canary,
    sends_to_canary,
)

ROUTE = ObjectKind.HTTP_ROUTE
REF = routing(gateway={"httpRouteName": "web-route"})
PROVIDER = GatewayProvider(REF.gateway, CONFIG)  # type: ignore[arg-type]


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def apply(route: dict[str, Any], changes: list[Any]) -> dict[str, Any]:
    for change in changes:
        assert isinstance(change, Patch)
        assert change.patch_type == "merge"
        route = merge(route, change.patch)
        route["metadata"]["resourceVersion"] = str(int(route["metadata"]["resourceVersion"]) + 1)
    return route


def ensure_once(route: dict[str, Any], intent: RouteIntent) -> dict[str, Any]:
    changes = PROVIDER.ensure(observed(REF, objects={(ROUTE, "web-route"): route}), intent)
    return apply(route, changes)


def ensure(route: dict[str, Any], intent: RouteIntent) -> dict[str, Any]:
    """Pass after pass (one per grace period, as the controller does) until nothing is left to change."""
    for _ in range(3):  # at most: introduce the canary at weight 0, then the step
        changes = PROVIDER.ensure(observed(REF, objects={(ROUTE, "web-route"): route}), intent)
        if not changes:
            return route
        route = apply(route, changes)
    raise AssertionError(f"ensure did not settle: {route['spec']['rules']}")


def finalise_once(route: dict[str, Any]) -> dict[str, Any]:
    return apply(route, PROVIDER.finalise(observed(REF, objects={(ROUTE, "web-route"): route})))


def finalise(route: dict[str, Any]) -> dict[str, Any]:
    for _ in range(3):  # at most: drain to the stable Service, then the original rules
        changes = PROVIDER.finalise(observed(REF, objects={(ROUTE, "web-route"): route}))
        if not changes:
            return route
        route = apply(route, changes)
    raise AssertionError(f"finalise did not settle: {route['spec']['rules']}")


def refs(route: dict[str, Any], rule: int = 0) -> list[tuple[str, int | None]]:
    return [(r["name"], r.get("weight")) for r in route["spec"]["rules"][rule]["backendRefs"]]


def step_matches(*raw: dict[str, Any]) -> tuple[HttpRouteMatch, ...]:
    return tuple(HttpRouteMatch.model_validate(m) for m in raw)


@pytest.mark.parametrize(("weight", "stable"), [(20, 80), (40, 60), (60, 40), (80, 20)])
def test_weights(weight: int, stable: int) -> None:
    route = ensure(http_route(), RouteIntent(weight=weight))
    assert refs(route) == [("web", stable), ("web-canary", weight)]
    assert route["spec"]["rules"][1] == ROUTE_RULES[1], "rules without the stable Service are left alone"
    canary_ref = route["spec"]["rules"][0]["backendRefs"][1]
    assert canary_ref == {"group": "", "kind": "Service", "name": "web-canary", "port": 80, "weight": weight}


def test_weight_steps_compute_from_the_original() -> None:
    route = http_route()
    for weight in (20, 40, 60, 80):
        route = ensure(route, RouteIntent(weight=weight))
    assert refs(route) == [("web", 20), ("web-canary", 80)]
    assert json.loads(route["metadata"]["annotations"][ORIGINAL_RULES_ANNOTATION]) == ROUTE_RULES


def test_a_backend_ref_without_kind_is_a_service() -> None:
    rules = [{"backendRefs": [{"name": "web", "port": 80}]}]
    route = ensure(http_route(rules), RouteIntent(weight=30))
    assert refs(route) == [("web", 70), ("web-canary", 30)]


def test_other_kinds_named_like_the_service_are_not_touched() -> None:
    rules = [{"backendRefs": [{"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "web"}]}]
    assert (
        PROVIDER.ensure(
            observed(REF, objects={(ROUTE, "web-route"): http_route(rules)}), RouteIntent(weight=30)
        )
        == []
    )


def test_matches_become_canary_rules() -> None:
    matches = step_matches(
        {"headers": [{"name": "user", "value": "tester"}]},
        {"queryParams": [{"name": "env", "type": "RegularExpression", "value": "gr.y"}]},
        {"path": {"type": "Exact", "value": "/beta"}, "headers": [{"name": "x", "value": "1"}]},
    )
    route = ensure(http_route(), RouteIntent(weight=50, matches=matches))  # matches win over a weight
    rules = route["spec"]["rules"]
    assert rules[:2] == ROUTE_RULES
    canary_ref = {"group": "", "kind": "Service", "name": "web-canary", "port": 80, "weight": 1}
    assert rules[2:] == [
        {
            "matches": [
                {
                    "path": {"type": "Exact", "value": "/beta"},
                    "headers": [{"type": "Exact", "name": "x", "value": "1"}],
                },
                {
                    "path": {"type": "PathPrefix", "value": "/"},
                    "headers": [{"type": "Exact", "name": "user", "value": "tester"}],
                },
                {
                    "path": {"type": "PathPrefix", "value": "/"},
                    "queryParams": [{"type": "RegularExpression", "name": "env", "value": "gr.y"}],
                },
            ],
            "backendRefs": [canary_ref],
        }
    ]


MODIFIER = HTTPHeaderFilter.model_validate({"set": [{"name": "x-mse-tag", "value": "gray"}]})
MODIFIER_FILTER = {
    "type": "RequestHeaderModifier",
    "requestHeaderModifier": {"set": [{"name": "x-mse-tag", "value": "gray"}]},
}


def test_a_request_header_modifier_rewrites_only_requests_to_the_canary() -> None:
    matches = step_matches({"headers": [{"name": "user", "value": "tester"}]})
    original = http_route()
    original["spec"]["rules"][0]["filters"] = [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "a", "value": "1"}]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": "b", "value": "2"}]}},
    ]
    route = ensure(original, RouteIntent(matches=matches, request_header_modifier=MODIFIER))
    rules = route["spec"]["rules"]
    assert rules[0] == original["spec"]["rules"][0]  # the stable rule keeps its own filters
    # The canary twin: the step's modifier replaces the rule's (one per rule), others are kept.
    assert rules[-1]["filters"] == [original["spec"]["rules"][0]["filters"][1], MODIFIER_FILTER]
    assert {r["name"] for r in rules[-1]["backendRefs"]} == {"web-canary"}


def test_a_weighted_step_puts_the_modifier_on_the_canary_backend_only() -> None:
    route = ensure(http_route(), RouteIntent(weight=20, request_header_modifier=MODIFIER))
    backends = {r["name"]: r for r in route["spec"]["rules"][0]["backendRefs"]}
    assert backends["web-canary"]["filters"] == [MODIFIER_FILTER]
    assert "filters" not in backends["web"]


def test_header_conditions_are_anded_with_each_rule_match() -> None:
    rules = [
        {
            "matches": [
                {"path": {"type": "PathPrefix", "value": "/a"}},
                {"path": {"type": "PathPrefix", "value": "/b"}},
            ],
            "backendRefs": [{"name": "web", "port": 80}],
        }
    ]
    route = ensure(
        http_route(rules), RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]}))
    )
    twin = route["spec"]["rules"][1]
    assert [m["path"]["value"] for m in twin["matches"]] == ["/a", "/b"]
    assert all(m["headers"] == [{"type": "Exact", "name": "h", "value": "v"}] for m in twin["matches"])


def test_named_rules_get_unique_canary_names() -> None:
    rules = [{"name": "main", "backendRefs": [{"name": "web", "port": 80}]}]
    route = ensure(
        http_route(rules), RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]}))
    )
    assert [r.get("name") for r in route["spec"]["rules"]] == ["main", "main-canary"]


def test_from_matches_back_to_a_weight_drops_the_canary_rules() -> None:
    route = ensure(
        http_route(), RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]}))
    )
    route = ensure(route, RouteIntent(weight=30))
    assert len(route["spec"]["rules"]) == 2
    assert refs(route) == [("web", 70), ("web-canary", 30)]


def test_finalise_restores_the_original_route_exactly() -> None:
    original = http_route(
        [{"backendRefs": [{"name": "web", "port": 80}], "filters": [{"type": "X", "x": {"y": 1}}]}]
    )
    route = ensure(original, RouteIntent(weight=20))
    route = ensure(route, RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]})))
    restored = finalise(route)
    assert restored["spec"] == original["spec"]
    assert ORIGINAL_RULES_ANNOTATION not in restored["metadata"].get("annotations", {})
    assert PROVIDER.finalise(observed(REF, objects={(ROUTE, "web-route"): restored})) == []


def test_finalise_without_a_record_uses_the_inverse() -> None:
    changed = copy.deepcopy(ROUTE_RULES)
    changed[0]["backendRefs"] = [
        {"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 70},
        {"group": "", "kind": "Service", "name": "web-canary", "port": 80, "weight": 30},
    ]
    changed.append({"backendRefs": [{"kind": "Service", "name": "web-canary", "port": 80}]})
    restored = finalise(http_route(changed))
    assert restored["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 1}
    ]
    assert len(restored["spec"]["rules"]) == 2


def test_done_when_the_server_defaulted_what_we_wrote() -> None:
    route = ensure(http_route([{"backendRefs": [{"name": "web", "port": 80}]}]), RouteIntent(weight=20))
    # The API server adds the CRD defaults to what we wrote.
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        ref.update({"group": "", "kind": "Service"})
    route["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert PROVIDER.ensure(observed(REF, objects={(ROUTE, "web-route"): route}), RouteIntent(weight=20)) == []


def test_patches_are_guarded_by_resource_version() -> None:
    changes = PROVIDER.ensure(
        observed(REF, objects={(ROUTE, "web-route"): http_route()}), RouteIntent(weight=20)
    )
    assert changes[0].patch["metadata"]["resourceVersion"] == "11"  # type: ignore[union-attr]


def test_missing_route_and_bad_annotation_are_reported() -> None:
    with pytest.raises(RoutingError, match=r"^HTTPRoute web-route not found$"):
        PROVIDER.ensure(observed(REF), RouteIntent(weight=5))
    bad = http_route(annotations={ORIGINAL_RULES_ANNOTATION: "{nope"})
    with pytest.raises(RoutingError, match="is not valid JSON"):
        PROVIDER.ensure(observed(REF, objects={(ROUTE, "web-route"): bad}), RouteIntent(weight=5))
    assert PROVIDER.finalise(observed(REF)) == []


def test_normalised_fills_crd_defaults() -> None:
    assert normalised(
        [{"backendRefs": [{"name": "a"}], "matches": [{"headers": [{"name": "h", "value": "v"}]}]}]
    ) == [
        {
            "backendRefs": [{"name": "a", "group": "", "kind": "Service", "weight": 1}],
            "matches": [
                {
                    "headers": [{"name": "h", "value": "v", "type": "Exact"}],
                    "path": {"type": "PathPrefix", "value": "/"},
                }
            ],
        }
    ]


# -- make before break: the canary backend is named at weight 0 before it gets, and after it loses, traffic


def test_the_first_write_names_the_canary_at_weight_zero_and_moves_no_traffic() -> None:
    route = ensure_once(http_route(), RouteIntent(weight=20))
    assert refs(route) == [("web", 1), ("web-canary", 0)]
    assert route["spec"]["rules"][1] == ROUTE_RULES[1]
    assert json.loads(route["metadata"]["annotations"][ORIGINAL_RULES_ANNOTATION]) == ROUTE_RULES
    route = ensure_once(route, RouteIntent(weight=20))  # the next pass, one grace period later
    assert refs(route) == [("web", 80), ("web-canary", 20)]
    assert json.loads(route["metadata"]["annotations"][ORIGINAL_RULES_ANNOTATION]) == ROUTE_RULES


def test_a_match_step_is_introduced_the_same_way() -> None:
    intent = RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]}))
    route = ensure_once(http_route(), intent)
    assert len(route["spec"]["rules"]) == 2, "no canary rule yet: no request can reach the canary"
    assert refs(route) == [("web", 1), ("web-canary", 0)]
    route = ensure_once(route, intent)
    assert [[r["name"] for r in rule["backendRefs"]] for rule in route["spec"]["rules"]] == [
        ["web"],
        ["static"],
        ["web-canary"],
    ]


def test_once_the_canary_is_named_steps_change_in_one_write() -> None:
    route = ensure(http_route(), RouteIntent(weight=20))
    route = ensure_once(route, RouteIntent(weight=40))
    assert refs(route) == [("web", 60), ("web-canary", 40)]
    route = ensure_once(route, RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]})))
    assert len(route["spec"]["rules"]) == 3


def test_a_step_that_sends_nothing_to_the_canary_needs_no_introduction() -> None:
    route = ensure_once(http_route(), RouteIntent(weight=0))  # blue-green 0%
    assert refs(route) == [("web", 100), ("web-canary", 0)]


def test_finalise_drains_to_the_stable_service_before_restoring() -> None:
    route = ensure(
        http_route(), RouteIntent(matches=step_matches({"headers": [{"name": "h", "value": "v"}]}))
    )
    drained = finalise_once(route)
    assert [
        [(r["name"], r.get("weight")) for r in rule["backendRefs"]] for rule in drained["spec"]["rules"]
    ] == [
        [("web", 1), ("web-canary", 0)],
        [("static", 1)],
    ], "the canary rule is gone, the canary is still named at weight 0"
    assert ORIGINAL_RULES_ANNOTATION in drained["metadata"]["annotations"], "the record outlives the drain"
    restored = finalise_once(drained)
    assert restored["spec"]["rules"] == ROUTE_RULES
    assert ORIGINAL_RULES_ANNOTATION not in restored["metadata"].get("annotations", {})
    assert PROVIDER.finalise(observed(REF, objects={(ROUTE, "web-route"): restored})) == []


def test_finalise_of_a_weighted_route_drains_too() -> None:
    route = ensure(http_route(), RouteIntent(weight=20))
    assert refs(finalise_once(route)) == [("web", 1), ("web-canary", 0)]


def test_finalise_without_a_record_drains_first() -> None:
    changed = copy.deepcopy(ROUTE_RULES)
    changed[0]["backendRefs"].append(
        {"group": "", "kind": "Service", "name": "web-canary", "port": 80, "weight": 30}
    )
    drained = finalise_once(http_route(changed))
    assert refs(drained) == [("web", 1), ("web-canary", 0)]


def test_canary_predicates() -> None:
    services = PROVIDER.services
    weighted = parse_rules(
        [{"backendRefs": [{"name": "web", "weight": 80}, {"name": "web-canary", "weight": 20}]}]
    )
    named = parse_rules([{"backendRefs": [{"name": "web"}, {"name": "web-canary", "weight": 0}]}])
    twin = parse_rules([{"backendRefs": [{"name": "web-canary"}]}])  # weight unset is 1
    plain = parse_rules(ROUTE_RULES)
    assert [sends_to_canary(r, services) for r in (weighted, named, twin, plain)] == [
        True,
        False,
        True,
        False,
    ]
    assert [references_canary(r, services) for r in (weighted, named, twin, plain)] == [
        True,
        True,
        True,
        False,
    ]
    assert introduced(named, services) == named, "a rule that names the canary already is left alone"
