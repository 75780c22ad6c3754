"""Least-privilege RBAC, proven on the RBAC-enforcing local API server (issue 13).

The chart's ServiceAccount, ClusterRole, Role and bindings are rendered with helm and applied; the
controller runs as that ServiceAccount (a TokenRequest kubeconfig) through a canary release, a release
with Ingress and HTTPRoute traffic, an end-to-end TrafficRouting release and a blue-green release with
an HPA, and never gets a 403.

Then every rule must have earned its place. Evidence is what the client itself counts: the controller's
`graylane_api_requests_total{verb,resource,code}` after the run, plus targeted runs, as that same
ServiceAccount, of the code paths a URL-mode test run does not take (the Service-mode leader's install of
the CRDs and webhook configurations, the shared certificate Secret, a repeated Event). A (resource, verb)
the roles grant with no successful request is a dead rule and fails the test; since RBAC only adds, and
no two rules grant the same (group, resource, verb), removing any rule refuses a request seen here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from graylane.api.workloads import ADVANCED_DAEMONSET, ADVANCED_STATEFULSET, CLONESET, DAEMONSET, STATEFULSET
from graylane.cluster.tools import ensure_helm, render_chart
from graylane.kube import resources as r
from graylane.kube.apimetrics import ApiMetrics, resource_label
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.events import EventKind, EventRecorder
from graylane.webhook import install as inst
from graylane.webhook.cert_secret import SecretCertSource, service_dns_names
from graylane.webhook.certs import CertStore
from tests.integration import test_trafficrouting as tr
from tests.integration.builders import set_image_patch
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.kinds_fixtures import KindRelease, openkruise_crds, rollout
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.test_bluegreen import BlueGreen
from tests.integration.test_canary_seed import two_steps_v1beta1
from tests.integration.traffic_fixtures import canary_rollout, gateway_api_crds, http_route, ingress, service
from tests.integration.waiting import eventually
from tests.integration.webhook_fixtures import Snapshot
from tests.unit.analysis.prometheus_fixtures import FakeApp, Prometheus, running

__all__ = ["gateway_api_crds", "openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("controller_stopped", "gateway_api_crds", "openkruise_crds")
SERVICE_ACCOUNT = r.Resource("", "v1", "serviceaccounts", "ServiceAccount")
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
Obj = dict[str, Any]
Grant = tuple[str, str, str]  # (apiGroup, resource, verb)
DENIED = ("401", "403", "error")


def _resource(kind: str) -> r.Resource:
    if kind == "ServiceAccount":
        return SERVICE_ACCOUNT
    plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}.get(kind)
    if plural:
        return r.Resource("rbac.authorization.k8s.io", "v1", plural, kind, namespaced=False)
    return r.Resource("rbac.authorization.k8s.io", "v1", kind.lower() + "s", kind)


def grants(docs: list[Obj]) -> Counter[Grant]:
    """Every (group, resource, verb) the roles grant, counted over rules (a count of 2 is an overlap)."""
    out: Counter[Grant] = Counter()
    for doc in docs:
        for rule in doc.get("rules") or []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out[(group, resource, verb)] += 1
    return out


class Installed:
    def __init__(self, namespace: str, docs: list[Obj], kubeconfig: Path) -> None:
        self.namespace, self.docs, self.kubeconfig = namespace, docs, kubeconfig

    @property
    def roles(self) -> list[Obj]:
        return [d for d in self.docs if d["kind"] in ("ClusterRole", "Role")]


@pytest.fixture(scope="module")
async def installed(
    kube: KubeClient, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Installed]:
    """The chart's RBAC objects in a namespace of their own, and a kubeconfig of its ServiceAccount."""
    tag = uuid.uuid4().hex[:6]
    namespace = f"rbac-{tag}"
    await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    helm = await asyncio.to_thread(ensure_helm)
    sets = {"installation.createNamespace": "false", "rollout.fullname": f"graylane-rbac-{tag}"}
    rendered = await asyncio.to_thread(render_chart, helm, sets=sets, namespace=namespace)
    docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict) and d["kind"] in RBAC_KINDS]
    for doc in docs:
        await kube.create(_resource(doc["kind"]), doc)
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    token = await kube.request(
        "POST", SERVICE_ACCOUNT.path(namespace, "kruise-rollout", "token"), body=request
    )
    config = yaml.safe_load(await asyncio.to_thread(kubeconfig.read_text))
    config["users"] = [
        {"name": u["name"], "user": {"token": token["status"]["token"]}} for u in config["users"]
    ]
    path = tmp_path_factory.mktemp("rbac") / "kruise-rollout.kubeconfig"
    await asyncio.to_thread(path.write_text, yaml.safe_dump(config))
    try:
        yield Installed(namespace, docs, path)
    finally:
        for doc in docs:
            if not _resource(doc["kind"]).namespaced:
                await kube.delete(_resource(doc["kind"]), doc["metadata"]["name"])
        await kube.delete(r.NAMESPACE, namespace)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus for the analysis release (its queries need no scraped data)."""
    for server, _ in running(tmp_path_factory.mktemp("rbac-prometheus"), FakeApp()):
        yield server


@pytest.fixture(scope="module")
def controller(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    proc = ControllerProcess(
        installed.kubeconfig,
        tmp_path_factory.mktemp("rbac-controller"),
        identity="rbac",
        install=False,
        namespace=installed.namespace,
    )
    yield proc
    proc.stop()


async def _point_webhooks_at(kube: KubeClient, proc: ControllerProcess) -> None:
    """As the admin (a URL-mode controller outside the cluster is not where Service mode installs from)."""
    ca = CertStore.for_name("graylane", ["localhost"]).ensure(dt.datetime.now(dt.UTC)).ca_pem
    url = f"https://127.0.0.1:{proc.webhook_port}"
    await inst.install(kube, url_base=url, service=None, ca_pem=ca, namespace="kruise-rollout")


def scrape_requests(proc: ControllerProcess) -> Counter[tuple[str, str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "graylane_api_requests_total":
                out[(s.labels["verb"], s.labels["resource"], s.labels["code"])] += int(s.value)
    return out


# -- the scenarios ---------------------------------------------------------------------------------


async def canary_release(kube: KubeClient, namespace: str) -> None:
    """With a rollout-id, as Kruise users set it: the release then labels its pods with their batch."""
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=4)
    await rel.given_rollout(two_steps_v1beta1("canary"))
    release = {"metadata": {"labels": {"rollouts.kruise.io/rollout-id": "v2"}}, **set_image_patch(V2)}
    await kube.patch(r.DEPLOYMENT, rel.name, release, namespace, patch_type="strategic")
    for step in (1, 2):
        await rel.then_paused_at(step)
        await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 4}, what="canary release done")
    # Deleting the Rollout hands the Deployment back for good: that pass reads it afresh (`get`).
    await kube.delete(r.ROLLOUT, rel.name, namespace)
    await eventually(
        lambda: kube.get_or_none(r.ROLLOUT, rel.name, namespace), lambda ro: ro is None, what="Rollout gone"
    )


async def traffic_release(kube: KubeClient, namespace: str) -> None:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await kube.create(r.HTTPROUTE, http_route(namespace))
    await rel.given_deployment(replicas=4)
    steps = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%", "traffic": "100%"}]
    routing = {"ingress": {"name": "web"}, "gateway": {"httpRouteName": "web-route"}}
    await rel.given_rollout(canary_rollout(routing, steps))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 4, V2: 1}, what="traffic step 1")
    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 4}, what="traffic release done")


async def blue_green_release(kube: KubeClient, namespace: str) -> None:
    """With an HPA: blue-green disables it and restores it, and holds the old ReplicaSet's pods."""
    rel = BlueGreen(kube, namespace, sub="blueGreenStatus")
    await rel.given_app()
    await rel.when_image(V2)
    for step in (1, 2):
        await rel.then_paused_at(step)
        await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="blue-green release done")


async def kinds_releases(kube: KubeClient, namespace: str) -> None:
    """Every other workload kind released in one step, then its Rollout deleted (the pass that hands the
    workload back for good reads it afresh: `get`). A native DaemonSet's batch deletes its old pods."""
    for kind in (STATEFULSET, DAEMONSET, CLONESET, ADVANCED_STATEFULSET, ADVANCED_DAEMONSET):
        rel = KindRelease(
            kube, namespace, kind, name=f"{kind.plural[:-1]}-{kind.version}".lower(), replicas=2
        )
        async with rel.controller():
            await rel.given_workload()
            await rel.given_rollout(rollout(kind, rel.name, [{"replicas": "100%"}]))
            await rel.when_image(V2)
            await rel.then_completed()
            await kube.delete(r.ROLLOUT, rel.name, namespace)
            await rel.then_nothing_left_behind()


async def analysis_release(kube: KubeClient, namespace: str, prometheus: str) -> None:
    """A step analysis (run created, measured, Successful) and a background one measuring until the
    release ends (then terminated: a patch), with templates read from both kinds' informers."""
    metric: dict[str, Any] = {
        "name": "ok",
        "interval": "1s",
        "successCondition": "result[0] < 1",
        "provider": {"prometheus": {"address": prometheus, "query": "vector(0.01)"}},
    }
    spec = {"metrics": [{**metric, "count": 1}]}
    group = "analysis.graylane.io/v1alpha1"
    await kube.create(
        r.ANALYSIS_TEMPLATE,
        {
            "apiVersion": group,
            "kind": "AnalysisTemplate",
            "metadata": {"name": "ok", "namespace": namespace},
            "spec": spec,
        },
    )
    await kube.create(
        r.CLUSTER_ANALYSIS_TEMPLATE,
        {
            "apiVersion": group,
            "kind": "ClusterAnalysisTemplate",
            "metadata": {"name": f"rbac-{namespace}"},
            "spec": {"metrics": [metric]},
        },
    )
    try:
        rel = Release(kube, namespace)
        await rel.given_deployment(replicas=2)
        ro = two_steps_v1beta1("canary")
        canary = ro["spec"]["strategy"]["canary"]
        canary["steps"] = [
            {"replicas": 1, "analysis": {"templates": [{"templateName": "ok"}]}},
            {"replicas": "100%"},
        ]
        canary["analysis"] = {"templates": [{"templateName": f"rbac-{namespace}", "clusterScope": True}]}
        await rel.given_rollout(ro)
        await rel.when_image(V2)
        await rel.then_completed()
        await rel.then_pods({V2: 2}, what="analysis release done")
    finally:
        await kube.delete(r.CLUSTER_ANALYSIS_TEMPLATE, f"rbac-{namespace}")


async def trafficrouting_release(kube: KubeClient, namespace: str) -> None:
    await tr.given_apps(kube, namespace)
    await tr.given_seed(kube, namespace, "v1beta1")
    await tr.when_released(kube, namespace, "spring-cloud-a")
    await tr.then_paused(kube, namespace, "rollout-a")
    await tr.when_approved(kube, namespace, "rollout-a")
    await tr.then_completed(kube, namespace, "rollout-a")
    await tr.then_traffic_routing(kube, namespace, "Healthy")


# -- targeted runs of the paths a URL-mode run does not take -----------------------------------------


async def service_mode_paths(
    kube: KubeClient, installed: Installed, proc: ControllerProcess, tmp: Path
) -> Counter[tuple[str, str, str]]:
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    async with KubeClient.from_kubeconfig(str(installed.kubeconfig), metrics=metrics) as sa:
        # The leader's install: configurations missing (create), then out of date (update).
        ca = CertStore.for_name("graylane", ["localhost"]).ensure(dt.datetime.now(dt.UTC)).ca_pem
        url = f"https://127.0.0.1:{proc.webhook_port}"
        for res, name in (
            (r.MUTATING_WEBHOOK, inst.MUTATING_CONFIGURATION),
            (r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION),
        ):
            await kube.delete(res, name)
        # As the Service-mode leader (configurations created, CRDs moved to the Service), then back to
        # this test's URL-mode controller (every object updated).
        service = inst.ServiceRef()
        await inst.install(sa, url_base=None, service=service, ca_pem=ca, namespace=installed.namespace)
        await inst.install(sa, url_base=url, service=None, ca_pem=ca, namespace=installed.namespace)
        # The shared serving certificate: created once, replaced when it no longer fits.
        names = service_dns_names(inst.SERVICE_NAME, installed.namespace)
        now = dt.datetime.now(dt.UTC)
        await SecretCertSource(sa, installed.namespace, CertStore(tmp / "a", tuple(names))).ensure(now)
        await SecretCertSource(sa, installed.namespace, CertStore(tmp / "b", ("other",))).ensure(now)
        # An Event said twice is counted on the first one (a patch).
        recorder = EventRecorder(sa)
        target = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": installed.namespace, "namespace": installed.namespace},
        }
        for _ in range(2):
            await recorder.event(target, EventKind.NORMAL, "RbacCheck", "said twice")
        # RBAC is enforced: anything outside the roles is refused.
        with pytest.raises(ApiError) as refused:
            await sa.list(r.Resource("", "v1", "secrets", "Secret"))
        assert refused.value.code == 403
    out: Counter[tuple[str, str, str]] = Counter()
    for metric in registry.collect():
        for s in metric.samples:
            if s.name.endswith("_total"):
                out[(s.labels["verb"], s.labels["resource"], s.labels["code"])] += int(s.value)
    out.pop(("list", "secrets", "403"))  # the refusal asked for above, not a missing rule
    return out


async def test_the_chart_roles_are_enough_and_every_rule_is_used(
    kube: KubeClient,
    installed: Installed,
    controller: ControllerProcess,
    prometheus: Prometheus,
    namespace: str,
    tmp_path: Path,
) -> None:
    before = await Snapshot.take(kube)
    try:
        await _point_webhooks_at(kube, controller)
        await asyncio.to_thread(controller.start)
        await asyncio.to_thread(controller.wait_ready, 90)
        await canary_release(kube, namespace)
        second = f"{namespace}-t"
        await kube.create(
            r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": second}}
        )
        third = f"{namespace}-r"
        await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": third}})
        fourth = f"{namespace}-k"
        await kube.create(
            r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fourth}}
        )
        fifth = f"{namespace}-b"
        await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fifth}})
        sixth = f"{namespace}-a"
        await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": sixth}})
        try:
            await traffic_release(kube, second)
            await trafficrouting_release(kube, third)
            await kinds_releases(kube, fourth)
            await blue_green_release(kube, fifth)
            await analysis_release(kube, sixth, prometheus.address)
            seen = await asyncio.to_thread(scrape_requests, controller)
            seen += await service_mode_paths(kube, installed, controller, tmp_path)
        finally:
            await kube.delete(r.NAMESPACE, second)
            await kube.delete(r.NAMESPACE, third)
            await kube.delete(r.NAMESPACE, fourth)
            await kube.delete(r.NAMESPACE, fifth)
            await kube.delete(r.NAMESPACE, sixth)
    finally:
        await asyncio.to_thread(controller.stop)
        await before.restore(kube)

    refused = {k: v for k, v in seen.items() if k[2] == "403"}
    assert not refused, f"requests the roles do not allow: {refused}"
    # Any answer but a refusal means the request was authorized: a 404 for a get-or-create still used
    # the get permission (without it the API server answers 403 whether the object exists or not).
    used = {(verb, resource) for (verb, resource, code), n in seen.items() if code not in DENIED and n}
    granted = grants(installed.roles)
    overlaps = [g for g, n in granted.items() if n > 1]
    assert not overlaps, f"granted by more than one rule: {overlaps}"
    plurals: dict[str, set[str]] = {}
    for group, resource, _ in granted:
        plurals.setdefault(resource_label(group, resource), set()).add(group)
    assert all(len(groups) == 1 for groups in plurals.values()), (
        "evidence is by resource label (OpenKruise's qualified by group): one group each"
    )
    dead = dead_grants(granted, used)
    assert not dead, f"rules no request needed (dead): {dead}\nused: {sorted(used)}"


def dead_grants(granted: Counter[Grant], used: set[tuple[str, str]]) -> list[Grant]:
    """The granted (group, resource, verb) no authorized request used."""
    return sorted(g for g in granted if (g[2], resource_label(g[0], g[1])) not in used)


def test_the_check_fails_on_a_rule_nothing_used(installed: Installed) -> None:
    """The check itself: the chart's roles plus one extra rule, against the requests the roles allow."""
    granted = grants(installed.roles)
    used = {(verb, resource_label(group, resource)) for group, resource, verb in granted}
    assert dead_grants(granted, used) == []
    extra = {"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
    assert dead_grants(grants([*installed.roles, extra]), used) == [("", "nodes", "get")]
