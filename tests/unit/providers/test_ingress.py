"""Ingress provider: the canary Ingress and the annotations each shipped script writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.inline_scripts import SCRIPTS
from tests.unit.providers.builders import CONFIG, NS, OWNER, ingress, observed, routing

from graylane.api.gateway import HTTPHeaderFilter
from graylane.api.rollout_v1beta1 import HttpRouteMatch
from graylane.planner.changes import Create, Delete, ObjectKind, Patch
from graylane.planner.routing import RouteIntent
from graylane.providers.traffic.base import RoutingError
from graylane.providers.traffic.ingress import IngressProvider, annotations_patch, desired_canary_ingress

ING = ObjectKind.INGRESS
N = "nginx.ingress.kubernetes.io/"


def provider(class_type: str = "nginx") -> IngressProvider:
    ref = routing(ingress={"name": "web", "classType": class_type})
    assert ref.ingress is not None
    return IngressProvider(ref.ingress, CONFIG, SCRIPTS)


def matches(*raw: dict[str, Any]) -> tuple[HttpRouteMatch, ...]:
    return tuple(HttpRouteMatch.model_validate(m) for m in raw)


def annotations(class_type: str, route: RouteIntent, current: dict[str, str] | None = None) -> dict[str, str]:
    """What the provider writes on an existing canary Ingress carrying `current`."""
    canary = ingress("web-canary", annotations=current or {})
    ref = routing(ingress={"name": "web", "classType": class_type})
    obs = observed(ref, objects={(ING, "web"): ingress(), (ING, "web-canary"): canary})
    changes = provider(class_type).ensure(obs, route)
    if not changes:
        return dict(current or {})
    assert isinstance(changes[0], Patch)
    patch = changes[0].patch["metadata"]["annotations"]
    merged = {**(current or {}), **patch}
    return {k: v for k, v in merged.items() if v is not None}


USER_OR_COOKIE = matches(
    {"headers": [{"name": "user_id", "type": "RegularExpression", "value": "123456"}]},
    {"headers": [{"name": "canary-by-cookie", "value": "demo"}]},
)


@pytest.mark.parametrize("weight", [20, 40, 60, 80, 90])
def test_nginx_weight(weight: int) -> None:
    got = annotations("nginx", RouteIntent(weight=weight), {N + "canary": "true", N + "canary-weight": "5"})
    assert got == {N + "canary": "true", N + "canary-weight": str(weight)}


def test_nginx_header_regex_and_cookie_without_weight() -> None:
    got = annotations(
        "nginx", RouteIntent(matches=USER_OR_COOKIE), {N + "canary": "true", N + "canary-weight": "90"}
    )
    assert got == {
        N + "canary": "true",
        N + "canary-by-header": "user_id",
        N + "canary-by-header-pattern": "123456",
        N + "canary-by-cookie": "demo",
    }


def test_nginx_next_weight_step_clears_the_matches() -> None:
    after_matches = annotations("nginx", RouteIntent(matches=USER_OR_COOKIE), {})
    assert annotations("nginx", RouteIntent(weight=30), after_matches) == {
        N + "canary": "true",
        N + "canary-weight": "30",
    }


def test_nginx_exact_header_and_unrelated_annotations_kept() -> None:
    route = RouteIntent(weight=10, matches=matches({"headers": [{"name": "x-env", "value": "gray"}]}))
    got = annotations("nginx", route, {"team": "a"})
    assert got == {
        "team": "a",
        N + "canary": "true",
        N + "canary-weight": "10",
        N + "canary-by-header": "x-env",
        N + "canary-by-header-value": "gray",
    }


def test_higress_writes_nginx_annotations() -> None:
    assert annotations("higress", RouteIntent(matches=USER_OR_COOKIE), {}) == annotations(
        "nginx", RouteIntent(matches=USER_OR_COOKIE), {}
    )
    assert annotations("higress", RouteIntent(weight=40), {}) == {
        N + "canary": "true",
        N + "canary-weight": "40",
    }


def test_aliyun_alb_prefix_and_order() -> None:
    alb = "alb.ingress.kubernetes.io/"
    assert annotations("aliyun-alb", RouteIntent(matches=USER_OR_COOKIE), {alb + "canary-weight": "50"}) == {
        alb + "canary": "true",
        alb + "order": "1",
        alb + "canary-by-header": "user_id",
        alb + "canary-by-header-pattern": "123456",
        alb + "canary-by-cookie": "demo",
    }


def test_mse_query_header_modifier_and_subset() -> None:
    mse = "mse.ingress.kubernetes.io/"
    route = RouteIntent(
        weight=20,
        matches=matches(
            {"queryParams": [{"name": "env", "value": "gray"}]}, {"headers": [{"name": "x", "value": "1"}]}
        ),
        request_header_modifier=HTTPHeaderFilter.model_validate(
            {"set": [{"name": "x-mse-tag", "value": "gray"}, {"name": "x-b", "value": "2"}]}
        ),
    )
    current = {mse + "service-subset": "v1", mse + "canary-by-query": "stale"}
    assert annotations("mse", route, current) == {
        N + "canary": "true",
        N + "canary-weight": "20",
        N + "canary-by-query": "env",
        N + "canary-by-query-value": "gray",
        N + "canary-by-header": "x",
        N + "canary-by-header-value": "1",
        mse + "service-subset": "gray",
        mse + "request-header-control-update": "x-mse-tag gray\nx-b 2",
    }


def test_canary_ingress_keeps_only_stable_service_paths() -> None:
    got = desired_canary_ingress(ingress(), CONFIG, "web-canary")
    assert got == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web-canary",
            "namespace": NS,
            "ownerReferences": [OWNER],
            "annotations": {"kubernetes.io/ingress.class": "nginx"},
            "labels": {"app": "web"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["web.example.com"], "secretName": "tls"}],
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web-canary", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def test_lifecycle_create_at_weight_zero_then_patch_then_done() -> None:
    ref = routing(ingress={"name": "web"})
    stable = ingress()
    first = provider().ensure(observed(ref, objects={(ING, "web"): stable}), RouteIntent(weight=20))
    assert len(first) == 1
    assert isinstance(first[0], Create)
    created = copy.deepcopy(dict(first[0].obj))
    assert created["metadata"]["annotations"][N + "canary-weight"] == "0"
    objects = {(ING, "web"): stable, (ING, "web-canary"): created}
    second = provider().ensure(observed(ref, objects=objects), RouteIntent(weight=20))
    assert second == [Patch(ING, "web-canary", {"metadata": {"annotations": {N + "canary-weight": "20"}}})]
    created["metadata"]["annotations"][N + "canary-weight"] = "20"
    assert provider().ensure(observed(ref, objects=objects), RouteIntent(weight=20)) == []
    assert stable == ingress(), "the cached stable Ingress is not touched"


def test_finalise_deletes_the_canary_ingress() -> None:
    ref = routing(ingress={"name": "web"})
    canary = ingress("web-canary")
    assert provider().finalise(observed(ref, objects={(ING, "web-canary"): canary})) == [
        Delete(ING, "web-canary")
    ]
    assert provider().finalise(observed(ref)) == []


def test_missing_ingress_is_reported() -> None:
    with pytest.raises(RoutingError, match=r"^Ingress web not found$"):
        provider().ensure(observed(routing(ingress={"name": "web"})), RouteIntent(weight=5))


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "return {",
            r"Lua script lua.traffic.routing.ingress.nginx \(ConfigMap kruise-rollout-configuration\) failed",
        ),
        ("return 'x'", "must return a table of annotations, not str"),
        ("return {a = 1}", "non-string annotation values for: a"),
    ],
)
def test_broken_user_script_is_reported(script: str, message: str) -> None:
    ref = routing(ingress={"name": "web"})
    obs = observed(
        ref, objects={(ING, "web"): ingress()}, lua_scripts={"lua.traffic.routing.ingress.nginx": script}
    )
    with pytest.raises(RoutingError, match=message):
        provider().ensure(obs, RouteIntent(weight=5))


def test_annotations_patch_nulls_removed_keys() -> None:
    assert annotations_patch({"a": "1", "b": "2"}, {"a": "1", "c": "3"}) == {
        "metadata": {"annotations": {"c": "3", "b": None}}
    }


def test_capabilities_by_class_type() -> None:
    assert "query parameter match" not in provider("nginx").capabilities
    assert "query parameter match" in provider("mse").capabilities
    assert provider("my-own").capabilities == provider("my-own").capabilities | provider("mse").capabilities
