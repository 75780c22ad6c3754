"""The controller process: manager + Rollout controller + webhook server, optionally self-installing.

Kruise's single `/manager` binary does the same: it serves the webhooks and points the webhook
configurations and CRD conversion at itself with its CA. Here that is `install=True`, done by the leader
only, each time it becomes the leader (issue 10): a standby never re-points them, so its start or death
never redirects or blocks admission. Two modes:

- URL mode (a controller outside the cluster): the webhooks listen on 127.0.0.1 and the configurations
  carry `https://127.0.0.1:<port>/...`; the certificate is kept in a local directory.
- Service mode (in a pod, two replicas): the webhooks listen on 0.0.0.0 behind the Service
  `kruise-rollout-webhook-service`, every replica serves the one certificate of the Secret
  `kruise-rollout-webhook-certs` (webhook/cert_secret.py), and the configurations name the Service.
"""

from __future__ import annotations

import asyncio.sslproto
import dataclasses
import enum
import logging
import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from graylane.analysis.providers import PrometheusClient, PrometheusProvider
from graylane.batchrelease import AdvancedDeploymentReconciler, BatchReleaseReconciler
from graylane.batchrelease.native_daemonset import NativeDaemonSetReconciler
from graylane.controller.analysisrun import AnalysisRunReconciler
from graylane.controller.rollout import RolloutReconciler
from graylane.kube import resources as r
from graylane.kube.apimetrics import ApiMetrics
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.credentials import resolve as resolve_credentials
from graylane.observe.traffic import TrafficObserver, discover_custom_kinds, discover_http_route
from graylane.observe.workload_kinds import PARTITION_KINDS, WorkloadInformers, discover
from graylane.observe.workloads import RevisionCache
from graylane.planner.changes import CustomKind
from graylane.runtime.loop import ReconcileLoop
from graylane.runtime.manager import Manager, ManagerOptions
from graylane.scripting.pool import ProcessScriptRunner
from graylane.telemetry.analysis import AnalysisMetrics
from graylane.telemetry.metrics import RolloutMetrics
from graylane.telemetry.observer import RolloutObserver
from graylane.telemetry.routed import ObjectRef
from graylane.trafficrouting.controller import TrafficRoutingReconciler
from graylane.webhook.cache import cached_listers
from graylane.webhook.cert_secret import SecretCertSource, service_dns_names
from graylane.webhook.certchild import LocalCertSource
from graylane.webhook.certfiles import CertSource, CertStore
from graylane.webhook.install import SERVICE_NAME, ServiceRef
from graylane.webhook.install import install as install_webhooks
from graylane.webhook.server import DEFAULT_PORT, KubeRolloutLister, WebhookServer, build_app
from graylane.webhook.workload import DeploymentMutator, KubeReplicaSetLister
from graylane.webhook.workload_kinds import KindsMutator

__all__ = ["ControllerOptions", "WebhookMode", "run_controller", "webhook_certs"]

log = logging.getLogger(__name__)
LEASE_CONNECTIONS = 4


class WebhookMode(enum.StrEnum):
    URL = "url"  # outside the cluster: the configurations carry this process's 127.0.0.1 address
    SERVICE = "service"  # in a pod: the configurations name the Service in front of every replica


@dataclasses.dataclass(frozen=True)
class ControllerOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "kruise-rollout"
    webhook_host: str = "127.0.0.1"  # the bind address; Service mode binds 0.0.0.0
    webhook_port: int = DEFAULT_PORT
    webhook_mode: WebhookMode = WebhookMode.URL
    service_port: int = 443  # the webhook Service's port (Kruise chart's service.port)
    install: bool = True
    cert_name: str = "graylane"
    cert_dir: str | None = None  # where the serving certificate's files live (default: the cache)
    manager: ManagerOptions = dataclasses.field(default_factory=ManagerOptions)
    # Workers are coroutines that mostly wait for API round trips, so more of them cost little; with 3,
    # 1,000 approvals queued for ~55 s at p99 (BENCHMARKS.md). Kruise's Go workers are goroutines too.
    rollout_workers: int = 16
    # A run's pass waits for its Prometheus queries (up to their timeout): enough workers that slow
    # or unreachable servers of some runs do not delay the measurements of the others.
    analysis_workers: int = 16
    advanced_deployment: bool = True  # Kruise's feature gate AdvancedDeployment (partition-style Deployments)


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


def webhook_certs(name: str, directory: str | None = None, dns_names: list[str] | None = None) -> CertStore:
    return CertStore.for_name(name, dns_names or ["localhost"], Path(directory) if directory else None)


def _cert_source(options: ControllerOptions, client: KubeClient) -> CertSource:
    if options.webhook_mode is WebhookMode.SERVICE:
        names = service_dns_names(SERVICE_NAME, options.namespace)
        store = webhook_certs(options.cert_name, options.cert_dir, names)
        return SecretCertSource(client, options.namespace, store)
    return LocalCertSource(webhook_certs(options.cert_name, options.cert_dir))


async def _permitted(client: KubeClient, resource: r.Resource) -> bool:
    """Whether this process may list and watch `resource` in every namespace (a SelfSubjectAccessReview,
    which every authenticated user may ask). A least-privilege install grants only the custom kinds its
    Rollouts use; watching one it may not would leave its informer unsynced and the controller unready."""
    for verb in ("list", "watch"):
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {"group": resource.group, "resource": resource.plural, "verb": verb}
            },
        }
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        answer = await client.request("POST", path, resource="selfsubjectaccessreviews", body=review)
        if not ((answer or {}).get("status") or {}).get("allowed"):
            return False
    return True


async def _watchable_custom_kinds(
    client: KubeClient, config_namespace: str
) -> tuple[dict[CustomKind, r.Resource], frozenset[CustomKind]]:
    """The custom kinds to watch, and those served that this controller may not list and watch."""
    found = await discover_custom_kinds(client, config_namespace)
    allowed = {kind: res for kind, res in found.items() if await _permitted(client, res)}
    denied = frozenset(found) - frozenset(allowed)
    for kind in sorted(denied, key=str):
        log.warning("%s is served but this controller may not list and watch it: not watched (RBAC)", kind)
    return allowed, denied


def _cached_lookup(manager: Manager, traffic: TrafficObserver) -> Callable[[str, ObjectRef], Obj | None]:
    """Provider objects from the informers the controllers registered (for the traffic-weight metric)."""
    resources = {("networking.k8s.io", "Ingress"): r.INGRESS}
    if traffic.http_route is not None:
        resources[("gateway.networking.k8s.io", "HTTPRoute")] = traffic.http_route
    for kind, resource in traffic.custom_resources.items():
        resources[(kind.group, kind.kind)] = resource

    def lookup(namespace: str, ref: ObjectRef) -> Obj | None:
        resource = resources.get((ref.api_version.rpartition("/")[0], ref.kind))
        return manager.informer(resource).get(namespace, ref.name) if resource is not None else None

    return lookup


def _observe(manager: Manager, traffic: TrafficObserver, client: KubeClient) -> RolloutObserver:
    """Operator metrics and user-action Events, fed by the shared Rollout informer (telemetry/)."""
    rollouts = manager.informer(r.ROLLOUT)
    metrics = RolloutMetrics(manager.registry, rollouts.list, _cached_lookup(manager, traffic))
    observer = RolloutObserver(
        client, manager.recorder, metrics, lambda: manager.is_leader, controller_manager=client.field_manager
    )
    observer.attach(rollouts)
    return observer


# asyncio gives every TLS connection a read buffer of SSLProtocol.max_size (256 KiB) for its whole
# life; the controller holds ~20 (a watch per informer, the request pools, the API server's calls to
# the webhooks): 32 KiB still takes two TLS records (16 KiB each) per read, and saves ~4.6 MB of RSS
# at start and more under load (measured, issue 14).
TLS_READ_BUFFER = 32 * 1024


async def run_controller(options: ControllerOptions) -> int:
    """Run until SIGTERM (0) or until leadership is lost (1)."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER
    # Users' Lua scripts run in worker processes (started at the first script), killed on the way out.
    with ProcessScriptRunner() as scripts:
        return await _run(options, scripts)


async def _run(options: ControllerOptions, scripts: ProcessScriptRunner) -> int:
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)  # graylane_api_requests_total on the manager's /metrics
    # aiohttp: a third of httpx's CPU per request (kube/transport.py), and loaded anyway for the webhooks.
    # The kubeconfig is read once, by lightkube in a child process (kube/credentials.py), for both clients.
    credentials = await asyncio.to_thread(resolve_credentials, options.kubeconfig, options.context)
    client = KubeClient(credentials, metrics=metrics, transport="aiohttp")
    # The elector's own pool (BENCHMARKS.md cause 4); a few connections, so a renewal can retry beside one.
    lease_client = KubeClient(
        credentials, metrics=metrics, max_connections=LEASE_CONNECTIONS, transport="aiohttp"
    )
    manager = Manager(client, options.manager, registry=registry, lease_client=lease_client)
    # Gateway API is optional: HTTPRoutes are watched if their CRD exists now, or once it is established.
    # So are custom kinds: those with a Lua script and a served API (observe/kinds.py).
    config_namespace = _config_namespace(options)
    custom, denied = await _watchable_custom_kinds(client, config_namespace)
    traffic = TrafficObserver(
        await discover_http_route(client), config_namespace, custom=custom, scripts=scripts, denied=denied
    )
    # StatefulSets and DaemonSets always; OpenKruise's kinds where their CRDs are (or once they are).
    workloads = WorkloadInformers(await discover(client))
    # The Rollout and BatchRelease controllers ask for the same workloads' revisions: hash each once.
    revisions = RevisionCache()
    rollout = RolloutReconciler(
        workers=options.rollout_workers, traffic=traffic, workloads=workloads, revisions=revisions
    )
    manager.add(ReconcileLoop(rollout))
    manager.add(
        ReconcileLoop(
            BatchReleaseReconciler(workers=options.rollout_workers, workloads=workloads, revisions=revisions)
        )
    )
    if options.advanced_deployment:
        manager.add(ReconcileLoop(AdvancedDeploymentReconciler()))
    manager.add(ReconcileLoop(NativeDaemonSetReconciler()))
    manager.add(ReconcileLoop(TrafficRoutingReconciler(traffic)))
    prometheus = PrometheusClient()  # one HTTP session for every run's queries, closed on the way out
    analysis_metrics = AnalysisMetrics(manager.registry, manager.informer(r.ANALYSIS_RUN).list)
    runs = AnalysisRunReconciler(
        PrometheusProvider(prometheus), workers=options.analysis_workers, metrics=analysis_metrics
    )
    manager.add(ReconcileLoop(runs))
    observer = _observe(manager, traffic, client)
    # The webhooks read the controllers' informer caches once synced (BENCHMARKS.md cause 3).
    rollouts, replica_sets = cached_listers(
        manager.informer(r.ROLLOUT), manager.informer(r.REPLICASET), client
    )
    # Decisions the caches could get wrong are read again from the API: a new hold's Rollout, and the
    # ReplicaSets of a new revision the cache would let through unheld (webhook/workload.py).
    mutator = DeploymentMutator(
        rollouts, replica_sets, KubeRolloutLister(client), KubeReplicaSetLister(client)
    )
    kinds = KindsMutator(
        rollouts, {(kind.group, kind.kind): kind for kind in PARTITION_KINDS}, KubeRolloutLister(client)
    )
    app = build_app(rollouts, mutator=mutator, kinds=kinds)
    server: WebhookServer
    service = ServiceRef(port=options.service_port) if options.webhook_mode is WebhookMode.SERVICE else None

    async def point_at_us(ca_bundle: bytes) -> None:
        url_base = None if service is not None else server.url_base
        await install_webhooks(
            client, url_base=url_base, service=service, ca_pem=ca_bundle, namespace=options.namespace
        )
        log.info("CRDs and webhook configurations point at %s", url_base or f"Service {SERVICE_NAME}")

    async def on_ca_change(ca_bundle: bytes) -> None:
        # A standby keeps its hands off the configurations; the leader re-points them with its CA.
        if manager.is_leader:
            await point_at_us(ca_bundle)

    server = WebhookServer(
        app,
        _cert_source(options, client),
        host=options.webhook_host,
        port=options.webhook_port,
        # A renewed CA must reach the API server before the new certificate is served.
        on_ca_change=on_ca_change if options.install else None,
    )
    async with server:
        if options.install:
            if service is None:  # outside the cluster the namespace may not exist yet; a pod runs in it
                await ensure_namespace(client, options.namespace)
            manager.add_leader_hook(lambda: point_at_us(server.certs.ca_pem))
        try:
            return await manager.run()
        finally:
            await observer.close()
            await prometheus.aclose()
