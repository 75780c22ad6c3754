"""Traffic read back from the provider objects (what `status` shows and the metrics gauge exports)."""

from __future__ import annotations

from typing import Any

from graylane.api.rollout_v1beta1 import Rollout
from graylane.telemetry.routed import ObjectRef, canary_weight, objects_to_read, read_back, render

INGRESS = ObjectRef("networking.k8s.io/v1", "Ingress", "web-canary")
ROUTE = ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute", "web")
VS = ObjectRef("networking.istio.io/v1beta1", "VirtualService", "vs")


def rollout(**routing: Any) -> Rollout:
    return Rollout.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {
                    "canary": {"steps": [{"replicas": 1}], "trafficRoutings": [{"service": "web", **routing}]}
                },
            },
        }
    )


def test_ingress_annotations_of_any_class_are_read() -> None:
    ro = rollout(ingress={"name": "web"})
    assert objects_to_read(ro) == [INGRESS]
    nginx = {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "20"}}}
    [line] = read_back(ro, {INGRESS: nginx})
    assert (line.canary_weight, render(line)) == (20, "Ingress web-canary: canary 20% / stable 80%")
    alb = {
        "metadata": {
            "annotations": {
                "alb.ingress.kubernetes.io/canary-by-header": "x-canary",
                "alb.ingress.kubernetes.io/canary-by-header-value": "beta",
            }
        }
    }
    [line] = read_back(ro, {INGRESS: alb})
    assert (line.canary_weight, line.matches) == (None, ("header x-canary=beta",))
    [gone] = read_back(ro, {INGRESS: None})
    assert gone.canary_weight == 0
    assert "absent" in render(gone)


def test_http_route_weights_and_match_rules() -> None:
    ro = rollout(gateway={"httpRouteName": "web"})
    weighted = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "web", "port": 80, "weight": 80},
                        {"name": "web-canary", "weight": 20},
                    ]
                }
            ]
        }
    }
    assert canary_weight(read_back(ro, {ROUTE: weighted})) == 20
    ab = {
        "spec": {
            "rules": [
                {"backendRefs": [{"name": "web"}]},
                {
                    "matches": [{"headers": [{"name": "x-canary", "value": "beta"}]}],
                    "backendRefs": [{"name": "web-canary"}],
                },
            ]
        }
    }
    [line] = read_back(ro, {ROUTE: ab})
    assert (line.canary_weight, line.matches) == (0, ("header x-canary=beta",))
    assert read_back(ro, {})[0].note == "not found"


def test_custom_objects_weights_are_found_by_the_canary_service() -> None:
    ro = rollout(customNetworkRefs=[{"apiVersion": VS.api_version, "kind": VS.kind, "name": "vs"}])
    vs = {
        "spec": {
            "http": [
                {
                    "route": [
                        {"destination": {"host": "web"}, "weight": 70},
                        {"destination": {"host": "web-canary.ns.svc.cluster.local"}, "weight": 30},
                    ]
                }
            ]
        }
    }
    assert canary_weight(read_back(ro, {VS: vs})) == 30
    untouched = {"spec": {"http": [{"route": [{"destination": {"host": "web"}}]}]}}
    assert read_back(ro, {VS: untouched})[0].canary_weight == 0
