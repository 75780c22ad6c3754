"""Builders for custom-provider tests: Istio and Gloo objects as cached, and a simulated API write."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tests.unit.providers.builders import CONFIG, NS, router, routing

from graylane.api.rollout_v1beta1 import HttpRouteMatch
from graylane.planner.changes import Change, CustomKind, Patch
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic.base import RoutingConfig

ISTIO_VS = CustomKind("networking.istio.io", "VirtualService")
ISTIO_DR = CustomKind("networking.istio.io", "DestinationRule")
GLOO_VS = CustomKind("gateway.solo.io", "VirtualService")
WATCHED = frozenset({ISTIO_VS, ISTIO_DR, GLOO_VS})


def ref(kind: CustomKind, name: str, version: str = "v1") -> dict[str, str]:
    return {"apiVersion": f"{kind.group}/{version}", "kind": kind.kind, "name": name}


def match(**fields: Any) -> HttpRouteMatch:
    return HttpRouteMatch.model_validate(fields)


def istio_virtual_service(name: str = "web-vs") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": "5",
            "labels": {"app": "web"},
            "annotations": {"team": "a"},
        },
        "spec": {
            "hosts": ["web.example.com"],
            "gateways": ["gw"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/static"}}],
                    "route": [{"destination": {"host": "static"}}],
                },
                {
                    "route": [
                        {
                            "destination": {"host": "web.ns1.svc.cluster.local", "port": {"number": 80}},
                            "weight": 80,
                        },
                        {"destination": {"host": "legacy"}, "weight": 20},
                    ]
                },
            ],
            "tcp": [{"route": [{"destination": {"host": "web", "port": {"number": 9000}}}]}],
        },
    }


def destination_rule(name: str = "web-dr") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "6"},
        "spec": {"host": "web", "subsets": [{"name": "stable", "labels": {"version": "base"}}]},
    }


def kube(service: str, port: int = 80) -> dict[str, Any]:
    return {"kube": {"ref": {"name": service, "namespace": NS}, "port": port}}


def gloo_virtual_service(name: str = "web-gloo") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "9"},
        "spec": {
            "virtualHost": {
                "domains": ["web.example.com"],
                "routes": [
                    {"matchers": [{"prefix": "/static"}], "routeAction": {"single": kube("static")}},
                    {"matchers": [{"prefix": "/"}], "routeAction": {"single": kube("web")}},
                ],
            }
        },
    }


def observed_custom(
    refs: list[dict[str, str]],
    objects: Mapping[tuple[CustomKind, str], Mapping[str, Any]],
    *,
    lua_scripts: Mapping[str, str] | None = None,
    config: RoutingConfig = CONFIG,
    watched: frozenset[CustomKind] = WATCHED,
    pod_template_labels: Mapping[str, str] | None = None,
) -> TrafficObserved:
    return TrafficObserved(
        router=router(routing(customNetworkRefs=refs), config),
        objects=dict(objects),
        lua_scripts=dict(lua_scripts or {}),
        watched=frozenset(watched),
        pod_template_labels=dict(pod_template_labels or {}),
    )


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386 merge, as the API server applies a merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


def written(obj: Mapping[str, Any], change: Change, version: str = "100") -> dict[str, Any]:
    """The object after the API server applied `change` (a Patch) and bumped its resourceVersion."""
    assert isinstance(change, Patch)
    assert change.patch["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], "guarded write"
    out: dict[str, Any] = merged(obj, change.patch)
    out["metadata"]["resourceVersion"] = version
    for key in ("labels", "annotations"):
        if not out["metadata"].get(key):
            out["metadata"].pop(key, None)  # the API server drops empty maps
    return out
