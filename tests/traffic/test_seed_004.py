"""Item 6, seed 004 (Higress / nginx Ingress + Kruise Rollout) by traffic, its YAML applied verbatim with
kubectl: the canary (10% -> 30% -> 100% of answers v2 with 1 then 2 new pods) and the A/B test
(`user-agent: android` -> v2, every other request v1). The page's Ingress has no host and serves
`/version` (Exact); requests go through Traefik's ingress-nginx provider."""

from __future__ import annotations

from tests.traffic.figures import Figures
from tests.traffic.probes import (
    MATCH_REQUESTS,
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
    kubectl,
    paused_at,
    then_images,
)

from graylane.trafficlab.lab import TrafficLab

TEST = "seed 004"
IMAGE = "registry.cn-hangzhou.aliyuncs.com/mse-ingress/version"
V1, V2 = "version:v1", "version:v2"  # as answers name them (no registry path)
IMAGES = {V1: f"{IMAGE}:v1", V2: f"{IMAGE}:v2"}
DOOR = nginx_door(path="/version")


def test_seed_004_canary_10_30_100(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    lab.run(_canary(lab, namespace, figures), timeout=900)


async def _given_app(lab: TrafficLab, namespace: str, rollout_file: str, name: str) -> None:
    assert lab.kube is not None
    await apply_seed(lab, namespace, "004-app-deployment-service-ingress.yaml")
    await then_images(lab.kube, namespace, "demo", {IMAGES[V1]: 5}, "5 v1 pods")
    await until_traffic(DOOR, only(V1), what="demo answering on /version", timeout=90)
    await apply_seed(lab, namespace, rollout_file)
    await first_deploy_done(lab.kube, namespace, name)
    await kubectl(lab, "set", "image", "-n", namespace, "deployment/demo", f"main={IMAGES[V2]}")


async def _canary(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    kube, name = lab.kube, "rollouts-demo"
    await _given_app(lab, namespace, "004-rollout-canary.yaml", name)
    for step, percent, new_pods in ((1, 10, 1), (2, 30, 2)):
        await paused_at(kube, namespace, name, step)
        pods = {IMAGES[V1]: 5, IMAGES[V2]: new_pods}
        await then_images(kube, namespace, "demo", pods, f"{new_pods} new pods at step {step}")
        await until_traffic(DOOR, some(V2), what=f"{percent}% on v2", timeout=60)
        tally = await DOOR.send(WEIGHT_REQUESTS)
        verdict = judge_weight(DOOR, tally, V2, V1, percent)
        figures.add(TEST, f"canary step {step} ({new_pods} new pods): {verdict}", counts=tally.count())
        await approve(kube, namespace, name)
    await completed(kube, namespace, name)
    await then_images(kube, namespace, "demo", {IMAGES[V2]: 5}, "all 5 pods v2")
    await until_traffic(DOOR, only(V2), what="100% v2", timeout=60)
    tally = await DOOR.send(WEIGHT_REQUESTS)
    figures.add(TEST, "canary completed: " + judge_all(DOOR, tally, V2, "all requests"))


def test_seed_004_ab_test_by_user_agent(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    lab.run(_ab(lab, namespace, figures), timeout=900)


async def _ab(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    kube, name = lab.kube, "rollouts-header"
    await _given_app(lab, namespace, "004-rollout-ab-header.yaml", name)
    await paused_at(kube, namespace, name, 1)
    await then_images(kube, namespace, "demo", {IMAGES[V1]: 5, IMAGES[V2]: 1}, "1 new pod")
    android = {"User-Agent": "android"}
    await until_traffic(DOOR, only(V2), what="user-agent android on v2", timeout=60, headers=android)
    for headers, image in ((android, V2), ({}, V1), ({"User-Agent": "iphone"}, V1)):
        tally = await DOOR.send(MATCH_REQUESTS, headers=headers)
        what = f"user-agent {headers.get('User-Agent', 'default (aiohttp)')}"
        figures.add(TEST, "A/B: " + judge_all(DOOR, tally, image, what))
    await approve(kube, namespace, name)
    await completed(kube, namespace, name)
    await then_images(kube, namespace, "demo", {IMAGES[V2]: 5}, "all 5 pods v2")
    await until_traffic(DOOR, only(V2), what="100% v2", timeout=60)
    figures.add(
        TEST, "A/B completed: " + judge_all(DOOR, await DOOR.send(MATCH_REQUESTS), V2, "all requests")
    )
