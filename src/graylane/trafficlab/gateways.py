"""The gateways of the traffic tier: how they are configured and which Kubernetes objects they serve.

Traefik (one process) serves two things the tests and the demo send requests through:
- the Gateway `lab` (namespace `gateways`, GatewayClass `traefik`, listener port `GATEWAY_PORT`):
  HTTPRoutes whose parentRefs name it; Traefik attaches the listener to its entryPoint of that port;
- Ingresses of class `nginx` (IngressClass controller `k8s.io/ingress-nginx`, or the legacy
  `kubernetes.io/ingress.class: nginx` annotation) on `NGINX_PORT`, through its ingress-nginx
  provider, which implements the `nginx.ingress.kubernetes.io/canary*` annotations graylane writes.
Contour + Envoy serve the Gateway `contour` (GatewayClass `contour`) with the same listener port;
Envoy listens on it plus 8000 (`ENVOY_PORT`), and picks backends at random.

Everything binds inside the traffic network namespace. Traefik's balancer is a deterministic smooth
weighted round robin; Envoy's is random: tests judge the two differently.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from graylane.kube import resources as r

__all__ = [
    "CONTOUR_GATEWAY",
    "ENVOY_PORT",
    "GATEWAY_NAMESPACE",
    "GATEWAY_PORT",
    "NGINX_PORT",
    "TRAEFIK_GATEWAY",
    "contour_argv",
    "envoy_argv",
    "envoy_failures",
    "gateway_objects",
    "parent_refs",
    "traefik_argv",
]

GATEWAY_NAMESPACE = "gateways"
TRAEFIK_GATEWAY = "lab"
CONTOUR_GATEWAY = "contour"
GATEWAY_PORT = 8000  # the Gateways' listener port = Traefik's entryPoint `web`
NGINX_PORT = 8100  # Traefik's entryPoint for the ingress-nginx provider
TRAEFIK_PING_PORT = 8190
ENVOY_PORT = GATEWAY_PORT + 8000  # Contour has Envoy listen on a Gateway listener's port + 8000
CONTOUR_XDS_PORT = 8001
CONTOUR_METRICS_PORT = 8002
CONTOUR_HEALTH_PORT = 8003
CONTOUR_DEBUG_PORT = 8004
ENVOY_STATS_PORT = 8005  # Envoy's /ready and /stats listener, configured by Contour
GATEWAY_GROUP = "gateway.networking.k8s.io"
# Contour's default Envoy access log (Envoy's stdout, the lab's logs/envoy.log):
# [START] "METHOD PATH PROTO" CODE FLAGS ... -- FLAGS say who answered an error: NC no cluster (the route
# names a cluster Envoy has not loaded), UH no healthy upstream, UF/UC upstream connect failure/close.
_ACCESS_LINE = re.compile(r'^\[(?P<start>[0-9T:.Z-]+)\] "[A-Z]+ [^"]*" (?P<code>\d{3}) (?P<flags>\S+) ')
GATEWAY_CLASS = r.Resource(GATEWAY_GROUP, "v1", "gatewayclasses", "GatewayClass", namespaced=False)
GATEWAY = r.Resource(GATEWAY_GROUP, "v1", "gateways", "Gateway")
INGRESS_CLASS = r.Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False)


def parent_refs() -> list[dict[str, str]]:
    """HTTPRoute parentRefs that put a route on both implementations."""
    return [
        {"name": TRAEFIK_GATEWAY, "namespace": GATEWAY_NAMESPACE},
        {"name": CONTOUR_GATEWAY, "namespace": GATEWAY_NAMESPACE},
    ]


def gateway_objects() -> list[tuple[r.Resource, dict[str, Any]]]:
    """IngressClass nginx, the two GatewayClasses, the namespace and the two Gateways (in order)."""
    listener = {
        "name": "http",
        "port": GATEWAY_PORT,
        "protocol": "HTTP",
        "allowedRoutes": {"namespaces": {"from": "All"}},
    }

    def gateway(name: str, cls: str) -> dict[str, Any]:
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
            "spec": {"gatewayClassName": cls, "listeners": [listener]},
        }

    def gateway_class(name: str, controller: str) -> dict[str, Any]:
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": name},
            "spec": {"controllerName": controller},
        }

    return [
        (
            INGRESS_CLASS,
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": "nginx"},
                "spec": {"controller": "k8s.io/ingress-nginx"},
            },
        ),
        (
            r.NAMESPACE,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}},
        ),
        (GATEWAY_CLASS, gateway_class("traefik", "traefik.io/gateway-controller")),
        (GATEWAY_CLASS, gateway_class("contour", "projectcontour.io/gateway-controller")),
        (GATEWAY, gateway(TRAEFIK_GATEWAY, "traefik")),
        (GATEWAY, gateway(CONTOUR_GATEWAY, "contour")),
    ]


def traefik_argv(binary: Path, workdir: Path) -> list[str]:
    """Traefik with a static configuration file written into `workdir` (KUBECONFIG comes from env)."""
    config = {
        "entryPoints": {
            "web": {"address": f":{GATEWAY_PORT}"},
            "nginx": {"address": f":{NGINX_PORT}"},
            "ping": {"address": f"127.0.0.1:{TRAEFIK_PING_PORT}"},
        },
        "ping": {"entryPoint": "ping"},
        # traefik_service_requests_total{service,code,...} per backend, on the ping entryPoint's
        # /metrics: the gateway's own count of what it sent where (measured exposure reads it).
        "metrics": {"prometheus": {"entryPoint": "ping", "addServicesLabels": True}},
        "providers": {
            "kubernetesGateway": {"throttleDuration": "0s"},
            "kubernetesIngressNGINX": {"httpEntryPoint": "nginx", "throttleDuration": "0s"},
        },
        "log": {"level": "INFO", "noColor": True},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
    }
    path = workdir / "traefik.yaml"
    path.write_text(yaml.safe_dump(config))
    return [str(binary), f"--configFile={path}"]


def contour_argv(binary: Path, workdir: Path, kubeconfig: Path) -> list[str]:
    config = {"gateway": {"gatewayRef": {"namespace": GATEWAY_NAMESPACE, "name": CONTOUR_GATEWAY}}}
    path = workdir / "contour.yaml"
    path.write_text(yaml.safe_dump(config))
    return [
        str(binary),
        "serve",
        f"--kubeconfig={kubeconfig}",
        "--no-incluster",
        "--insecure",
        "--disable-leader-election",
        f"--config-path={path}",
        "--xds-address=127.0.0.1",
        f"--xds-port={CONTOUR_XDS_PORT}",
        "--http-address=127.0.0.1",
        f"--http-port={CONTOUR_METRICS_PORT}",
        "--health-address=127.0.0.1",
        f"--health-port={CONTOUR_HEALTH_PORT}",
        "--debug-http-address=127.0.0.1",
        f"--debug-http-port={CONTOUR_DEBUG_PORT}",
        "--stats-address=127.0.0.1",
        f"--stats-port={ENVOY_STATS_PORT}",
        "--envoy-service-http-address=127.0.0.1",
        "--envoy-service-https-address=127.0.0.1",
        # The v1.6.1 CRDs no longer serve BackendTLSPolicy v1alpha3, and Contour exits on it.
        "--disable-feature=backendtlspolicies",
        "--disable-feature=tlsroutes",
        "--disable-feature=tcproutes",
    ]


def bootstrap_argv(contour: Path, workdir: Path) -> list[str]:
    """`contour bootstrap`: Envoy's static bootstrap pointing at Contour's xDS server."""
    return [
        str(contour),
        "bootstrap",
        str(workdir / "envoy.json"),
        "--xds-address=127.0.0.1",
        f"--xds-port={CONTOUR_XDS_PORT}",
        f"--admin-address={workdir / 'envoy-admin.sock'}",  # a unix socket: no admin port at all
        f"--resources-dir={workdir / 'envoy-resources'}",
    ]


def envoy_argv(envoy: Path, workdir: Path) -> list[str]:
    return [
        str(envoy),
        "-c",
        str(workdir / "envoy.json"),
        "--service-cluster",
        "projectcontour",
        "--service-node",
        "graylane-lab",
        "--disable-hot-restart",  # no shared memory with other Envoys on this machine
        "--log-level",
        "warn",
    ]


def envoy_failures(log_text: str, since: dt.datetime | None = None) -> list[str]:
    """The access-log lines of Envoy's answers that were not 2xx (with their response flags), of
    requests that started at `since` or later (Envoy flushes its log every second, so lines of earlier
    requests may still arrive after a test has noted where the log ended)."""
    found = []
    for line in log_text.splitlines():
        match = _ACCESS_LINE.match(line)
        if match is None or match["code"].startswith("2"):
            continue
        started = dt.datetime.fromisoformat(match["start"].replace("Z", "+00:00"))
        if since is None or started >= since:
            found.append(line)
    return found
