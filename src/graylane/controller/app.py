"""The controller process: manager + Rollout controller + webhook server, optionally self-installing.

Kruise's single `/manager` binary does the same: it serves the webhooks, and at start-up points the
webhook configurations and CRD conversion at itself with its CA. Here that is `install=True` (URL mode
on 127.0.0.1 for a controller running outside the cluster).
"""

from __future__ import annotations

import dataclasses
import logging
import os

from prometheus_client import CollectorRegistry

from graylane.batchrelease import AdvancedDeploymentReconciler, BatchReleaseReconciler
from graylane.controller.rollout import RolloutReconciler
from graylane.kube import resources as r
from graylane.kube.apimetrics import ApiMetrics
from graylane.kube.client import ApiError, KubeClient
from graylane.observe.traffic import TrafficObserver, discover_custom_kinds, discover_http_route
from graylane.runtime.loop import ReconcileLoop
from graylane.runtime.manager import Manager, ManagerOptions
from graylane.trafficrouting.controller import TrafficRoutingReconciler
from graylane.webhook.cache import cached_listers
from graylane.webhook.certs import CertStore
from graylane.webhook.install import install as install_webhooks
from graylane.webhook.server import DEFAULT_PORT, WebhookServer, build_app
from graylane.webhook.workload import DeploymentMutator

__all__ = ["ControllerOptions", "run_controller", "webhook_certs"]

log = logging.getLogger(__name__)
LEASE_CONNECTIONS = 4


@dataclasses.dataclass(frozen=True)
class ControllerOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "kruise-rollout"
    webhook_host: str = "127.0.0.1"
    webhook_port: int = DEFAULT_PORT
    install: bool = True
    cert_name: str = "graylane"
    manager: ManagerOptions = dataclasses.field(default_factory=ManagerOptions)
    # Workers are coroutines that mostly wait for API round trips, so more of them cost little; with 3,
    # 1,000 approvals queued for ~55 s at p99 (BENCHMARKS.md). Kruise's Go workers are goroutines too.
    rollout_workers: int = 16


async def ensure_namespace(client: KubeClient, name: str) -> None:
    """The lease and events live in the controller's namespace; a local install may not have it yet."""
    if await client.get_or_none(r.NAMESPACE, name) is None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await client.create(r.NAMESPACE, body)
        except ApiError as err:
            if not err.already_exists:
                raise


def _config_namespace(options: ControllerOptions) -> str:
    """Where ConfigMap kruise-rollout-configuration is read: POD_NAMESPACE, else the controller's."""
    return os.environ.get("POD_NAMESPACE") or options.namespace


def webhook_certs(name: str) -> CertStore:
    return CertStore.for_name(name, ["localhost"])


async def run_controller(options: ControllerOptions) -> int:
    """Run until SIGTERM (0) or until leadership is lost (1)."""
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)  # graylane_api_requests_total on the manager's /metrics
    client = KubeClient.from_kubeconfig(options.kubeconfig, options.context, metrics=metrics)
    # The elector's own pool (BENCHMARKS.md cause 4); a few connections, so a renewal can retry beside one.
    lease_client = KubeClient.from_kubeconfig(
        options.kubeconfig, options.context, metrics=metrics, max_connections=LEASE_CONNECTIONS
    )
    manager = Manager(client, options.manager, registry=registry, lease_client=lease_client)
    # Gateway API is optional: HTTPRoutes are watched if their CRD exists now, or once it is established.
    # So are custom kinds: those with a Lua script and a served API (observe/kinds.py).
    config_namespace = _config_namespace(options)
    traffic = TrafficObserver(
        await discover_http_route(client),
        config_namespace,
        custom=await discover_custom_kinds(client, config_namespace),
    )
    manager.add(ReconcileLoop(RolloutReconciler(workers=options.rollout_workers, traffic=traffic)))
    manager.add(ReconcileLoop(BatchReleaseReconciler(workers=options.rollout_workers)))
    manager.add(ReconcileLoop(AdvancedDeploymentReconciler()))
    manager.add(ReconcileLoop(TrafficRoutingReconciler(traffic)))
    # The webhooks read the controllers' informer caches once synced (BENCHMARKS.md cause 3).
    rollouts, replica_sets = cached_listers(
        manager.informer(r.ROLLOUT), manager.informer(r.REPLICASET), client
    )
    app = build_app(rollouts, mutator=DeploymentMutator(rollouts, replica_sets))
    server: WebhookServer

    async def point_at_us(ca_bundle: bytes) -> None:
        await install_webhooks(
            client, url_base=server.url_base, service=None, ca_pem=ca_bundle, namespace=options.namespace
        )

    server = WebhookServer(
        app,
        webhook_certs(options.cert_name),
        host=options.webhook_host,
        port=options.webhook_port,
        # A renewed CA must reach the API server before the new certificate is served.
        on_ca_change=point_at_us if options.install else None,
    )
    async with server:
        if options.install:
            await ensure_namespace(client, options.namespace)
            await point_at_us(server.certs.ca_pem)
            log.info("CRDs and webhook configurations point at %s", server.url_base)
        return await manager.run()
