"""Objects of the traffic tests: an app (Deployment + Service) behind an nginx Ingress and an HTTPRoute."""

from __future__ import annotations

from typing import Any

from tests.integration.builders import deployment

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.trafficlab import gateways as gw

V1, V2, V3 = "demo:v1", "demo:v2", "demo:v3"


def nginx_host(namespace: str) -> str:
    return f"{namespace}.nginx.test"


def route_host(namespace: str) -> str:
    return f"{namespace}.route.test"


def service(namespace: str, name: str = "demo") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def ingress(namespace: str, name: str = "demo") -> Obj:
    backend = {"service": {"name": name, "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": nginx_host(namespace), "http": {"paths": [path]}}],
        },
    }


def http_route(namespace: str, name: str = "demo") -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": gw.parent_refs(),
            "hostnames": [route_host(namespace)],
            "rules": [{"backendRefs": [{"name": name, "port": 80}]}],
        },
    }


def rollout(steps: list[dict[str, Any]], routing: dict[str, Any], name: str = "demo") -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "strategy": {
                "canary": {
                    "enableExtraWorkloadForCanary": True,
                    "steps": steps,
                    "trafficRoutings": [{"service": name, **routing}],
                }
            },
        },
    }


BOTH = {"ingress": {"classType": "nginx", "name": "demo"}, "gateway": {"httpRouteName": "demo"}}
NGINX_ONLY = {"ingress": {"classType": "nginx", "name": "demo"}}
ROUTE_ONLY = {"gateway": {"httpRouteName": "demo"}}


async def deploy_app(
    kube: KubeClient, namespace: str, replicas: int = 5, *, nginx: bool, route: bool
) -> None:
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=replicas, image=V1))
    await kube.create(r.SERVICE, service(namespace))
    if nginx:
        await kube.create(r.INGRESS, ingress(namespace))
    if route:
        await kube.create(r.HTTPROUTE, http_route(namespace))
