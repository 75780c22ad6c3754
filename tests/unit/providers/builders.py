"""Builders for provider tests: cached-looking Services, Ingresses, HTTPRoutes and a TrafficObserved."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tests.unit.inline_scripts import SCRIPTS

from graylane.api.rollout_v1beta1 import TrafficRoutingRef
from graylane.planner.changes import ObjectKind
from graylane.planner.observed import TrafficObserved
from graylane.planner.routing import Revisions
from graylane.providers.traffic.base import RoutingConfig
from graylane.providers.traffic.registry import provider_for
from graylane.providers.traffic.router import Router

NS = "ns1"
OWNER = {
    "apiVersion": "rollouts.kruise.io/v1beta1",
    "kind": "Rollout",
    "name": "demo",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
CONFIG = RoutingConfig(namespace=NS, stable_service="web", canary_service="web-canary", owner=OWNER)
REVISIONS = Revisions("pod-template-hash", stable="s111", canary="c222")


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": "svc-uid",
            "resourceVersion": "7",
            "labels": {"app": "web"},
            "annotations": {"team": "a"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.0.0.10",
            "clusterIPs": ["10.0.0.10"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def ingress(name: str = "web", annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    other = {"service": {"name": "other", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": "3",
            "labels": {"app": "web"},
            "annotations": dict(annotations or {"kubernetes.io/ingress.class": "nginx"}),
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["web.example.com"], "secretName": "tls"}],
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend},
                            {"path": "/other", "pathType": "Prefix", "backend": other},
                        ]
                    },
                },
                {
                    "host": "other.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": other}]},
                },
            ],
        },
    }


def http_route(
    rules: list[dict[str, Any]] | None = None, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web-route", "namespace": NS, "resourceVersion": "11"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta,
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": copy.deepcopy(rules if rules is not None else ROUTE_RULES),
        },
    }


# As stored by the API server: defaults filled in (kind Service, group "", weight 1, path prefix "/").
ROUTE_RULES: list[dict[str, Any]] = [
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 1}],
    },
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "static", "port": 80, "weight": 1}],
    },
]


def routing(**fields: Any) -> TrafficRoutingRef:
    return TrafficRoutingRef.model_validate({"service": "web", **fields})


def router(ref: TrafficRoutingRef, config: RoutingConfig = CONFIG) -> Router:
    return Router(config, provider_for(ref, config, SCRIPTS))


def observed(
    ref: TrafficRoutingRef,
    *,
    stable: Mapping[str, Any] | None = None,
    canary: Mapping[str, Any] | None = None,
    objects: Mapping[tuple[ObjectKind, str], Mapping[str, Any]] | None = None,
    lua_scripts: Mapping[str, str] | None = None,
    config: RoutingConfig = CONFIG,
) -> TrafficObserved:
    return TrafficObserved(
        router=router(ref, config),
        stable_service=stable,
        canary_service=canary,
        objects=dict(objects or {}),
        lua_scripts=dict(lua_scripts or {}),
    )
