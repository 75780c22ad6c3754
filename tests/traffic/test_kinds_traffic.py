"""Seed 004's promise for other workloads: a CloneSet and a DaemonSet released in batches with traffic
through the gateway (issue 16).

The seed's app (its Service and nginx Ingress, `/version`, through Traefik's ingress-nginx provider) runs
as a CloneSet of 5 (OpenKruise's CRD; its controller played by tests/integration/kruise_driver.py as
recorded) and as a native DaemonSet on the lab's three nodes (the cluster's own controller). The seed's
canary (weight 10 with 1 new pod, weight 30 with 2 new pods) releases it in place, batch by batch: the
stable Service is narrowed to the old revision, a canary Service selects the new pods by the kind's
revision label (pod-template-hash for a CloneSet, controller-revision-hash for a DaemonSet), and the
Ingress canary sends the step's share; after approval every request answers v2.
"""

from __future__ import annotations

import yaml
from tests.integration.kinds_fixtures import install_openkruise_crds, workload
from tests.integration.kruise_driver import KruiseDriver
from tests.seeds import seed_path
from tests.traffic.figures import Figures
from tests.traffic.probes import (
    WEIGHT_REQUESTS,
    judge_all,
    judge_weight,
    nginx_door,
    only,
    some,
    until_traffic,
)
from tests.traffic.seed_steps import approve, completed, first_deploy_done, paused_at, then_images

from graylane.api import keys
from graylane.api.workloads import CLONESET, DAEMONSET, WorkloadKind
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.observe.workload_resources import resource_of
from graylane.trafficlab.lab import TrafficLab

TEST = "seed 004 kinds"
IMAGE = "registry.cn-hangzhou.aliyuncs.com/mse-ingress/version"
V1, V2 = "version:v1", "version:v2"  # as answers name them (no registry path)
IMAGES = {V1: f"{IMAGE}:v1", V2: f"{IMAGE}:v2"}
DOOR = nginx_door(path="/version")
NAME = "rollouts-demo"


def test_seed_004_canary_on_a_cloneset(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    lab.run(_canary(lab, namespace, figures, CLONESET, 5), timeout=900)


def test_seed_004_canary_on_a_daemonset(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    lab.run(_canary(lab, namespace, figures, DAEMONSET, 3), timeout=900)


def _seed_docs() -> list[Obj]:
    docs = yaml.safe_load_all(seed_path("004-app-deployment-service-ingress.yaml").read_text("utf-8"))
    return [d for d in docs if isinstance(d, dict)]


def _app(kind: WorkloadKind, namespace: str, replicas: int) -> Obj:
    """The seed's Deployment as a workload of `kind`: the same pod template."""
    [deployment] = [d for d in _seed_docs() if d["kind"] == "Deployment"]
    body = workload(kind, "demo", namespace, replicas=replicas)
    body["spec"]["template"] = deployment["spec"]["template"]
    body["spec"]["selector"] = deployment["spec"]["selector"]
    return body


def _rollout(kind: WorkloadKind) -> Obj:
    """The seed's canary Rollout (v1alpha1) naming the workload of `kind`."""
    seed = yaml.safe_load(seed_path("004-rollout-canary.yaml").read_text("utf-8"))
    seed["spec"]["objectRef"]["workloadRef"] = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "name": "demo",
    }
    for routing in seed["spec"]["strategy"]["canary"]["trafficRoutings"]:
        routing.pop("type", None)  # not in the v1alpha1 schema (seeds/README.md)
    return seed


async def _canary(lab: TrafficLab, namespace: str, figures: Figures, kind: WorkloadKind, size: int) -> None:
    kube = lab.kube
    assert kube is not None
    if kind.openkruise:
        await install_openkruise_crds(kube)
        async with KruiseDriver(kube, kind, namespace, "demo").running():
            await _release(kube, namespace, figures, kind, size)
    else:
        await _release(kube, namespace, figures, kind, size)


async def _release(kube: KubeClient, namespace: str, figures: Figures, kind: WorkloadKind, size: int) -> None:
    await _given_app(kube, namespace, kind, size)
    await kube.create(r.ROLLOUT_V1ALPHA1, _rollout(kind), namespace)
    await first_deploy_done(kube, namespace, NAME)
    template = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": IMAGES[V2]}]}}}}
    await kube.patch(resource_of(kind), "demo", template, namespace)
    for step, percent, new_pods in ((1, 10, 1), (2, 30, 2)):
        await paused_at(kube, namespace, NAME, step)
        pods = {IMAGES[V1]: size - new_pods, IMAGES[V2]: new_pods}
        await then_images(kube, namespace, "demo", pods, f"{new_pods} new pods at step {step}")
        await until_traffic(DOOR, some(V2), what=f"{percent}% on v2", timeout=60)
        tally = await DOOR.send(WEIGHT_REQUESTS)
        verdict = judge_weight(DOOR, tally, V2, V1, percent)
        figures.add(
            TEST, f"{kind.kind} step {step} ({new_pods} of {size} pods new): {verdict}", counts=tally.count()
        )
        await approve(kube, namespace, NAME)
    await completed(kube, namespace, NAME)
    await then_images(kube, namespace, "demo", {IMAGES[V2]: size}, f"all {size} pods v2")
    await until_traffic(DOOR, only(V2), what="100% v2", timeout=60)
    tally = await DOOR.send(WEIGHT_REQUESTS)
    figures.add(TEST, f"{kind.kind} completed: " + judge_all(DOOR, tally, V2, "all requests"))
    workload_obj = await kube.get(resource_of(kind), "demo", namespace)
    assert keys.IN_PROGRESSING_ANNOTATION not in (workload_obj["metadata"].get("annotations") or {})


async def _given_app(kube: KubeClient, namespace: str, kind: WorkloadKind, size: int) -> None:
    for doc in _seed_docs():
        if doc["kind"] == "Service":
            await kube.create(
                r.SERVICE, {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}, namespace
            )
        elif doc["kind"] == "Ingress":
            await kube.create(
                r.INGRESS, {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}, namespace
            )
    await kube.create(resource_of(kind), _app(kind, namespace, size), namespace)
    await then_images(kube, namespace, "demo", {IMAGES[V1]: size}, f"{size} v1 pods")
    await until_traffic(DOOR, only(V1), what="demo answering on /version", timeout=90)
