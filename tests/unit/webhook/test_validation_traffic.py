"""graylane's webhook rule: a step its traffic provider cannot route is Forbidden, naming both."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.webhook.validation import render_errors, validate_rollout

Obj = dict[str, Any]


def beta(routing: Obj, *steps: Obj) -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {
                "canary": {
                    "enableExtraWorkloadForCanary": True,
                    "steps": [*steps, {"replicas": "100%"}],
                    "trafficRoutings": [{"service": "web", **routing}],
                }
            },
        },
    }


NGINX = {"ingress": {"name": "web"}}
MSE = {"ingress": {"name": "web", "classType": "mse"}}
GATEWAY = {"gateway": {"httpRouteName": "web"}}
QUERY = {"replicas": 1, "matches": [{"queryParams": [{"name": "env", "value": "gray"}]}]}


def errors(obj: Obj) -> str:
    return render_errors(validate_rollout(obj, None, []))


def test_query_match_on_nginx_is_refused() -> None:
    assert errors(beta(NGINX, {"replicas": 1, "traffic": "10%"}, QUERY)) == (
        "Spec.Strategy.Canary.Steps[1].Matches[0].QueryParams: Forbidden: "
        "the Ingress nginx traffic provider cannot route by query parameter match"
    )


@pytest.mark.parametrize(
    ("routing", "step", "field", "feature"),
    [
        (NGINX, {"matches": [{"path": {"value": "/x"}}]}, "Matches[0].Path", "path match"),
        (
            NGINX,
            {"requestHeaderModifier": {"set": [{"name": "a", "value": "b"}]}},
            "RequestHeaderModifier",
            "request header modifier",
        ),
        (
            GATEWAY,
            {"matches": [{"headers": [{"name": "canary-by-cookie", "value": "x"}]}]},
            "Matches[0].Headers[0]",
            "cookie match",
        ),
    ],
)
def test_unsupported_features(routing: Obj, step: Obj, field: str, feature: str) -> None:
    message = errors(beta(routing, {"replicas": 1, **step}))
    assert message.startswith(f"Spec.Strategy.Canary.Steps[0].{field}: Forbidden: ")
    assert message.endswith(f"traffic provider cannot route by {feature}")


def test_gateway_api_routes_a_request_header_modifier() -> None:
    """HTTPRoutes carry it as a RequestHeaderModifier filter (proven by traffic in tests/traffic)."""
    modifier = {"requestHeaderModifier": {"set": [{"name": "a", "value": "b"}]}}
    assert errors(beta(GATEWAY, {"replicas": 1, **modifier})) == ""


@pytest.mark.parametrize(
    ("routing", "step"),
    [
        (
            NGINX,
            {
                "traffic": "20%",
                "matches": [{"headers": [{"name": "u", "type": "RegularExpression", "value": "1"}]}],
            },
        ),
        (NGINX, {"matches": [{"headers": [{"name": "canary-by-cookie", "value": "demo"}]}]}),
        (MSE, {**QUERY, "requestHeaderModifier": {"set": [{"name": "x-mse-tag", "value": "gray"}]}}),
        (GATEWAY, {"matches": [{"path": {"value": "/a"}, "queryParams": [{"name": "q", "value": "1"}]}]}),
        ({"ingress": {"name": "web", "classType": "my-own-script"}}, QUERY),
    ],
)
def test_supported_features_pass(routing: Obj, step: Obj) -> None:
    assert errors(beta(routing, {"replicas": 1, **step})) == ""


def test_v1alpha1_weight_and_headers() -> None:
    obj = {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"weight": 10, "replicas": 1, "matches": [{"headers": [{"name": "a", "value": "b"}]}]}
                    ],
                    "trafficRoutings": [{"service": "web", **NGINX}],
                }
            },
        },
    }
    assert errors(obj) == ""


def test_updates_that_keep_the_steps_are_admitted() -> None:
    """Rollouts admitted before this rule can still get the controller's finalizer and annotations."""
    old = beta(NGINX, {"replicas": 1, "traffic": "10%"}, QUERY)
    new = {**old, "metadata": {**old["metadata"], "finalizers": ["rollouts.kruise.io/rollout"]}}
    assert render_errors(validate_rollout(new, old, [])) == ""
    edited = beta(NGINX, {"replicas": 1, "traffic": "20%"}, QUERY)
    assert "QueryParams: Forbidden" in render_errors(validate_rollout(edited, old, []))


ISTIO = {
    "customNetworkRefs": [{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "vs"}]
}
COOKIE = {"replicas": 1, "matches": [{"headers": [{"name": "canary-by-cookie", "value": "x"}]}]}


@pytest.mark.parametrize(
    ("routing", "step"),
    [
        pytest.param({**ISTIO, **NGINX}, QUERY, id="istio-routes-the-query-nginx-ignores-it"),
        pytest.param({**ISTIO, **NGINX}, COOKIE, id="nginx-routes-the-cookie-istio-ignores-it"),
        pytest.param({**NGINX, **GATEWAY}, QUERY, id="the-httproute-routes-the-query"),
    ],
)
def test_a_step_one_of_several_providers_can_route_is_admitted(routing: Obj, step: Obj) -> None:
    """Issue 15 item 7: Kruise admits these and each provider does what it can."""
    assert errors(beta(routing, step)) == ""


def test_a_step_no_provider_can_route_is_still_refused() -> None:
    assert errors(beta({**ISTIO, **GATEWAY}, COOKIE)) == (
        "Spec.Strategy.Canary.Steps[0].Matches[0].Headers[0]: Forbidden: the customNetworkRefs "
        "(VirtualService.networking.istio.io) + Gateway API HTTPRoute traffic provider cannot route by "
        "cookie match"
    )
