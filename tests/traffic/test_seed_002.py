"""Item 6, seed 002 (KubeVela's kruise-rollout trait) by traffic: the Rollout exactly as the trait
renders it (seeds/002-trait-rendered-rollout.yaml, applied verbatim), in front of the Deployment,
Service and Ingress that KubeVela's webservice component and gateway trait render for the page's
Application (image barnett/canarydemo, port 8090, 5 replicas, host canary-demo.com, path /version).
20% then 90% of answers v2 with 1 then 5 canary pods, then all v2; and the page's rollback path:
mid-release, the image back to v1 gives every answer from v1."""

from __future__ import annotations

from typing import Any

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
from tests.traffic.seed_steps import (
    apply_seed,
    approve,
    completed,
    first_deploy_done,
    paused_at,
    then_images,
)

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.trafficlab.lab import TrafficLab

TEST = "seed 002"
NAME = "canary-demo"
PODS = "app.oam.dev/component=canary-demo"
IMAGE = "barnett/canarydemo"
V1, V2 = "canarydemo:v1", "canarydemo:v2"
IMAGES = {V1: f"{IMAGE}:v1", V2: f"{IMAGE}:v2"}
DOOR = nginx_door(path="/version", host="canary-demo.com")
LABELS = {"app.oam.dev/name": NAME, "app.oam.dev/component": NAME}


def rendered_app() -> list[tuple[r.Resource, dict[str, Any]]]:
    """What KubeVela's webservice (port 8090) + scaler (5) + gateway (domain, /version) render."""
    meta = {"name": NAME, "labels": LABELS}
    selector = {"app.oam.dev/component": NAME}
    container = {"name": NAME, "image": IMAGES[V1], "ports": [{"containerPort": 8090, "name": "port-8090"}]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"selector": selector, "ports": [{"name": "port-8090", "port": 8090, "targetPort": 8090}]},
    }
    backend = {"service": {"name": NAME, "port": {"number": 8090}}}
    path = {"path": "/version", "pathType": "ImplementationSpecific", "backend": backend}
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "canary-demo.com", "http": {"paths": [path]}}],
        },
    }
    return [(r.DEPLOYMENT, deployment), (r.SERVICE, service), (r.INGRESS, ingress)]


def test_seed_002_twenty_then_ninety_percent_and_rollback(
    lab: TrafficLab, namespace: str, figures: Figures
) -> None:
    lab.run(_scenario(lab, namespace, figures), timeout=1200)


async def _set_image(kube: KubeClient, namespace: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": NAME, "image": IMAGES[image]}]}}}}
    await kube.patch(r.DEPLOYMENT, NAME, patch, namespace, patch_type="strategic")


async def _scenario(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    kube = lab.kube
    for res, obj in rendered_app():
        await kube.create(res, obj, namespace)
    await then_images(kube, namespace, PODS, {IMAGES[V1]: 5}, "5 v1 pods")
    await until_traffic(DOOR, only(V1), what="Demo: V1 through the gateway", timeout=90)
    await apply_seed(lab, namespace, "002-trait-rendered-rollout.yaml")
    await first_deploy_done(kube, namespace, NAME)

    # The page's rollback path first: mid-release, back to v1.
    await _set_image(kube, namespace, V2)
    await paused_at(kube, namespace, NAME, 1)
    await until_traffic(DOOR, some(V2), what="20% on v2", timeout=60)
    await _set_image(kube, namespace, V1)
    await completed(kube, namespace, NAME, succeeded=False)
    await then_images(kube, namespace, PODS, {IMAGES[V1]: 5}, "rolled back: 5 v1 pods")
    await until_traffic(DOOR, only(V1), what="every answer v1 after the rollback", timeout=60)
    figures.add(TEST, "rolled back: " + judge_all(DOOR, await DOOR.send(WEIGHT_REQUESTS), V1, "all requests"))

    await _set_image(kube, namespace, V2)
    for step, percent, canary_pods in ((1, 20, 1), (2, 90, 5)):
        await paused_at(kube, namespace, NAME, step)
        pods = {IMAGES[V1]: 5, IMAGES[V2]: canary_pods}
        await then_images(kube, namespace, PODS, pods, f"{canary_pods} canary pods at step {step}")
        await until_traffic(DOOR, some(V2), what=f"{percent}% on v2", timeout=60)
        tally = await DOOR.send(WEIGHT_REQUESTS)
        verdict = judge_weight(DOOR, tally, V2, V1, percent)
        figures.add(TEST, f"step {step} ({canary_pods} canary pods): {verdict}", counts=tally.count())
        await approve(kube, namespace, NAME)
    await completed(kube, namespace, NAME)
    await then_images(kube, namespace, PODS, {IMAGES[V2]: 5}, "all 5 pods v2, canary removed")
    await until_traffic(DOOR, only(V2), what="100% v2", timeout=60)
    figures.add(TEST, "completed: " + judge_all(DOOR, await DOOR.send(WEIGHT_REQUESTS), V2, "all requests"))
