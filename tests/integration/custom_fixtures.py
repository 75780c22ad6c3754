"""Fixtures for customNetworkRefs tests: Istio's and Gloo's real CRDs, a user's Lua script, a controller.

The Istio VirtualService and DestinationRule CRDs come from the `istio.io/api` Go module
(graylane.cluster.thirdparty), never written by hand, so the API server validates every object
graylane writes against Istio's own schema. Gloo Edge's VirtualService CRD is the unmodified generated
file vendored in data/thirdparty/gloo (PROVENANCE.md says why: the module proxy refuses solo-io
modules here). The controller picks the custom kinds it watches at
start-up (a shipped or configured Lua script, and a served API), so the session controller is
restarted once after the CRDs and the user's script key exist. The user's kind is Gateway API's
GRPCRoute: a real CRD that no shipped script knows, driven by a script from the ConfigMap.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from graylane.cluster.thirdparty import fetch_istio_crds
from graylane.controller.app import ensure_namespace
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.webhook.install import wait_established
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.traffic_fixtures import CONFIG_NAMESPACE, _apply, set_lua_script

ISTIO_VS = r.Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")
ISTIO_DR = r.Resource("networking.istio.io", "v1", "destinationrules", "DestinationRule")
GLOO_VS = r.Resource("gateway.solo.io", "v1", "virtualservices", "VirtualService")
GLOO_UPSTREAM = r.Resource("gloo.solo.io", "v1", "upstreams", "Upstream")
GLOO_DIR = Path(__file__).parent / "data" / "thirdparty" / "gloo"
GLOO_CRD_FILE = GLOO_DIR / "gateway.solo.io_v1_VirtualService.yaml"
GLOO_UPSTREAM_CRD_FILE = GLOO_DIR / "gloo.solo.io_v1_Upstream.yaml"
GRPC_ROUTE = r.Resource("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute")
GRPC_KEY = "lua.traffic.routing.GRPCRoute.gateway.networking.k8s.io"
# A user's script: weights on every rule's backendRefs (stable scaled, canary added), like a mesh would.
GRPC_SCRIPT = """
local data = obj.data
if obj.canaryWeight == -1 then return data end
for _, rule in ipairs(data.spec.rules or {}) do
  local refs = {}
  for _, ref in ipairs(rule.backendRefs or {}) do
    if ref.name == obj.stableService then
      ref.weight = obj.stableWeight
      table.insert(refs, ref)
      -- group and kind as the API server defaults them, so what is read back equals what was written
      local canary = {group = ref.group, kind = ref.kind, name = obj.canaryService, port = ref.port}
      canary.weight = obj.canaryWeight
      table.insert(refs, canary)
    elseif ref.name ~= obj.canaryService then
      table.insert(refs, ref)
    end
  end
  rule.backendRefs = refs
end
return data
"""


@pytest.fixture(scope="session")
async def istio_crds(kube: KubeClient) -> list[str]:
    paths = await asyncio.to_thread(fetch_istio_crds)
    names = []
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        await _apply(kube, r.CRD, doc)
        names.append(doc["metadata"]["name"])
    async with asyncio.timeout(60):
        await wait_established(kube, names)
    return names


@pytest.fixture(scope="session")
async def gloo_crds(kube: KubeClient) -> list[str]:
    """Gloo Edge's VirtualService and Upstream CRDs, vendored (see data/thirdparty/gloo/PROVENANCE.md)."""
    names = []
    for path in (GLOO_CRD_FILE, GLOO_UPSTREAM_CRD_FILE):
        doc = yaml.safe_load(path.read_text())
        await _apply(kube, r.CRD, doc)
        names.append(doc["metadata"]["name"])
    async with asyncio.timeout(60):
        await wait_established(kube, names)
    return names


@pytest.fixture(scope="session")
async def controller_sees_custom_kinds(
    kube: KubeClient,
    istio_crds: list[str],
    gloo_crds: list[str],
    gateway_api_crds: list[str],
    controller_process: ControllerProcess,
) -> None:
    """Restart (once) a controller started before the CRDs and the user's script key existed."""
    await ensure_namespace(kube, CONFIG_NAMESPACE)  # the controller makes it, but may not have run yet
    await set_lua_script(kube, GRPC_KEY, GRPC_SCRIPT)
    controller_process.stop()


@pytest.fixture
def custom_controller(
    controller_sees_custom_kinds: None, graylane_controller: ControllerProcess
) -> ControllerProcess:
    return graylane_controller


def virtual_service(namespace: str, name: str = "web-vs") -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "web"}},
        "spec": {
            "hosts": ["web.example.com"],
            "gateways": ["istio-system/gateway"],
            "http": [
                {
                    "name": "static",
                    "match": [{"uri": {"prefix": "/static"}}],
                    "route": [{"destination": {"host": "static", "port": {"number": 80}}}],
                },
                {
                    "name": "main",
                    "route": [{"destination": {"host": "web", "port": {"number": 80}}}],
                    "timeout": "5s",
                },
            ],
        },
    }


def destination_rule(namespace: str, name: str = "web-dr") -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": "web", "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
    }


def grpc_route(namespace: str, name: str = "web-grpc") -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


def gloo_virtual_service(namespace: str, name: str = "web-gloo") -> Obj:
    """A Gloo Edge VirtualService: `/static` to another Service (left alone), then `/` to Service web."""
    kube_dest = {"kube": {"ref": {"name": "web", "namespace": namespace}, "port": 80}}
    static = {"kube": {"ref": {"name": "static", "namespace": namespace}, "port": 80}}
    return {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"team": "web"},
            "annotations": {"owner": "web-team"},
        },
        "spec": {
            "virtualHost": {
                "domains": ["web.example.com"],
                "routes": [
                    {
                        "name": "static",
                        "matchers": [{"prefix": "/static"}],
                        "routeAction": {"single": static},
                    },
                    {
                        "name": "main",
                        "matchers": [{"prefix": "/"}],
                        "routeAction": {"single": kube_dest},
                        "options": {"timeout": "5s"},
                    },
                ],
            }
        },
    }
