"""Fixtures and builders for traffic-routing tests: Gateway API CRDs, a Service, Ingress and HTTPRoute.

The Gateway API CRDs come from the `sigs.k8s.io/gateway-api` Go module (graylane.cluster.thirdparty),
never written by hand. The controller discovers HTTPRoutes at start-up, so the session controller is
restarted once after the CRDs are applied.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from graylane.cluster.thirdparty import fetch_gateway_api_crds
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import CORE_EVENT
from graylane.webhook.install import wait_established
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.waiting import eventually

NGINX = "nginx.ingress.kubernetes.io/"
CONFIG_NAMESPACE = "kruise-rollout"
CONFIGMAP = "kruise-rollout-configuration"


@pytest.fixture(scope="session")
async def gateway_api_crds(kube: KubeClient) -> list[str]:
    paths = await asyncio.to_thread(fetch_gateway_api_crds)
    names = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                await _apply(kube, r.CRD, doc)
                names.append(doc["metadata"]["name"])
    async with asyncio.timeout(60):
        await wait_established(kube, names)
    return names


@pytest.fixture(scope="session")
def controller_sees_gateway_api(gateway_api_crds: list[str], controller_process: ControllerProcess) -> None:
    """A controller started before the CRDs existed does not watch HTTPRoutes: restart it (once)."""
    controller_process.stop()


@pytest.fixture
def traffic_controller(
    controller_sees_gateway_api: None, graylane_controller: ControllerProcess
) -> ControllerProcess:
    return graylane_controller


async def _apply(kube: KubeClient, res: r.Resource, obj: Obj) -> None:
    try:
        await kube.create(res, obj)
    except ApiError as err:
        if not err.already_exists:
            raise
        current = await kube.get(res, obj["metadata"]["name"])
        body = {
            **obj,
            "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        await kube.replace(res, body)


# -- objects --------------------------------------------------------------------------------------


def service(namespace: str, name: str = "web", app: str = "demo") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def ingress(namespace: str, name: str = "web", service_name: str = "web") -> Obj:
    backend = {"service": {"name": service_name, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "annotations": {"team": "web"}},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def http_route(namespace: str, name: str = "web-route", service_name: str = "web") -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "hostnames": ["web.example.com"],
            "rules": [
                {"backendRefs": [{"name": service_name, "port": 80}]},  # no kind: the CRD defaults it
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "static", "port": 80}],
                },
            ],
        },
    }


def canary_rollout(routing: dict[str, Any], steps: list[dict[str, Any]]) -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {
                "canary": {
                    "enableExtraWorkloadForCanary": True,
                    "steps": steps,
                    "trafficRoutings": [{"service": "web", **routing}],
                }
            },
        },
    }


# -- reading back ---------------------------------------------------------------------------------


async def get_or_none(kube: KubeClient, res: r.Resource, name: str, namespace: str) -> Obj | None:
    return await kube.get_or_none(res, name, namespace)


def nginx_annotations(obj: Obj | None) -> dict[str, str]:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return {k.removeprefix(NGINX): v for k, v in annotations.items() if k.startswith(NGINX)}


async def canary_ingress_annotations(
    kube: KubeClient, namespace: str, wanted: dict[str, str]
) -> dict[str, str]:
    async def probe() -> dict[str, str] | None:
        found = await kube.get_or_none(r.INGRESS, "web-canary", namespace)
        return nginx_annotations(found) if found is not None else None

    got = await eventually(
        probe, lambda a: a == wanted, what=f"canary Ingress annotations {wanted}", timeout=60
    )
    assert got is not None
    return got


async def warning_events(kube: KubeClient, namespace: str, name: str = "demo") -> list[Obj]:
    listed = await kube.list(CORE_EVENT, namespace, field_selector=f"involvedObject.name={name}")
    return [e for e in listed["items"] if e.get("type") == "Warning"]


async def set_lua_script(kube: KubeClient, key: str, script: str | None) -> None:
    """Set (or with None remove) one key of the controller's ConfigMap kruise-rollout-configuration."""
    current = await kube.get_or_none(r.CONFIGMAP, CONFIGMAP, CONFIG_NAMESPACE)
    if current is None:
        if script is None:
            return
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP},
            "data": {key: script},
        }
        await kube.create(r.CONFIGMAP, body, CONFIG_NAMESPACE)
        return
    await kube.patch(r.CONFIGMAP, CONFIGMAP, {"data": {key: script}}, CONFIG_NAMESPACE)
