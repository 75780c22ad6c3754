"""Item 6, seed 003: the end-to-end gray lane gateway -> spring-cloud-a -> spring-cloud-b, with the
TrafficRouting and either Rollouts file applied verbatim.

What is proven by requests, hop by hop (the fake app's answers nest the next hop's answer):
- a's gray pod (the gray Deployment's, carrying both gray labels) calls b's gray pod while b releases,
  b's stable pods otherwise; a's stable pods always call b's stable pods; after both approvals every
  answer is v2 on both hops and no gray pod is left. This is checked both through the gateway
  (Traefik) and by calling a's gray pod directly.
What is proven by objects: the gateway hop's `User-Agent: foo` canary rule and its `x-mse-tag: gray`
header are written on a canary Ingress of class nginx by graylane's MSE script (the TrafficRouting's
classType); Traefik reads the nginx canary annotations but has neither MSE's header rewrite nor its
tag routing, so it spreads every request (with or without the header) over all of a's pods.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
from tests.integration.builders import deployment
from tests.integration.waiting import eventually
from tests.traffic.figures import Figures
from tests.traffic.probes import Door, nginx_door
from tests.traffic.seed_steps import apply_seed, approve, completed, first_deploy_done, paused_at, then_images

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.trafficlab.client import Answer, Tally, send
from graylane.trafficlab.lab import TrafficLab

TEST = "seed 003 lane"
A, B = "spring-cloud-a", "spring-cloud-b"
GRAY = {"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}
NGINX = "nginx.ingress.kubernetes.io/"
ROLLOUTS = {
    "v1beta1": "003-full-link-rollouts-v1beta1.yaml",
    "v1alpha1": "003-full-link-rollouts-v1alpha1.yaml",
}
LANE_REQUESTS = 200


def image(app: str, version: str) -> str:
    return f"{app}:{version}"


def _hop(body: Any) -> tuple[str, bool]:
    labels = (body or {}).get("labels") or {}
    return str((body or {}).get("image")), all(labels.get(k) == v for k, v in GRAY.items())


def lane(answer: Answer) -> str:
    """`a's image [(gray)] -> b's image [(gray)]`, or `HTTP <code>` for a failed request."""
    if not answer.ok:
        return f"HTTP {answer.status}"

    def name(hop: tuple[str, bool]) -> str:
        return hop[0] + (" (gray)" if hop[1] else "")

    return " -> ".join(name(_hop(body)) for body in (answer.body, answer.body.get("upstream")))


def lane_counts(tally: Tally) -> dict[str, int]:
    return dict(sorted(collections.Counter(lane(a) for a in tally.answers).items()))


async def given_apps(kube: KubeClient, namespace: str) -> None:
    a = deployment(A, namespace, replicas=3, image=image(A, "v1"))
    a["spec"]["template"]["metadata"]["annotations"] = {"trafficlab.graylane.io/upstream": B}
    for obj in (a, deployment(B, namespace, replicas=3, image=image(B, "v1"))):
        await kube.create(r.DEPLOYMENT, obj)
    for app in (A, B):
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": app, "namespace": namespace},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }
        await kube.create(r.SERVICE, service)
    backend = {"service": {"name": A, "port": {"number": 80}}}
    rule = {
        "host": f"{namespace}.lane.test",
        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": A, "namespace": namespace},
        "spec": {"ingressClassName": "nginx", "rules": [rule]},
    }
    await kube.create(r.INGRESS, ingress)


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha1"])
def test_seed_003_gray_lane(lab: TrafficLab, namespace: str, figures: Figures, version: str) -> None:
    lab.run(_scenario(lab, namespace, figures, version), timeout=1500)


async def _scenario(lab: TrafficLab, namespace: str, figures: Figures, version: str) -> None:
    assert lab.kube is not None
    kube = lab.kube
    await given_apps(kube, namespace)
    for app in (A, B):
        await then_images(kube, namespace, app, {image(app, "v1"): 3}, f"{app} on v1")
    door = nginx_door(host=f"{namespace}.lane.test")
    await _lane(door, {"User-Agent": "foo"}, {f"{A}:v1 -> {B}:v1"}, "before the release")

    await apply_seed(lab, namespace, "003-full-link-trafficrouting.yaml")
    await apply_seed(lab, namespace, ROLLOUTS[version])
    for rollout in ("rollout-a", "rollout-b"):
        await first_deploy_done(kube, namespace, rollout)

    # a releases: its native rolling update is held, a gray Deployment of 1 pod carries both labels.
    await _set_image(kube, namespace, A, "v2")
    await paused_at(kube, namespace, "rollout-a", 1)
    gray_a = await _gray_pod(kube, namespace, A, "v2")
    await then_images(kube, namespace, A, {image(A, "v1"): 3, image(A, "v2"): 1}, "3 stable a pods + 1 gray")
    await _canary_ingress(kube, namespace, figures)
    want = {f"{A}:v1 -> {B}:v1", f"{A}:v2 (gray) -> {B}:v1"}
    await _lane(door, {"User-Agent": "foo"}, want, f"{version}: a releasing, b not", figures)
    await _direct(
        lab, gray_a, {f"{A}:v2 (gray) -> {B}:v1"}, f"{version}: a's gray pod, b not releasing", figures
    )

    # b releases too: a's gray pod now reaches b's gray pod; stable a still reaches stable b.
    await _set_image(kube, namespace, B, "v2")
    await paused_at(kube, namespace, "rollout-b", 1)
    await _gray_pod(kube, namespace, B, "v2")
    want = {f"{A}:v1 -> {B}:v1", f"{A}:v2 (gray) -> {B}:v2 (gray)"}
    await _lane(door, {"User-Agent": "foo"}, want, f"{version}: a and b releasing", figures)
    await _lane(door, {}, want, f"{version}: a and b releasing, no User-Agent foo", figures)
    await _direct(
        lab, gray_a, {f"{A}:v2 (gray) -> {B}:v2 (gray)"}, f"{version}: a's gray pod, b releasing", figures
    )

    # Approvals: both roll natively, the gray Deployments and pods go, routing returns to normal.
    for rollout in ("rollout-a", "rollout-b"):
        await approve(kube, namespace, rollout)
    for rollout, app in (("rollout-a", A), ("rollout-b", B)):
        await completed(kube, namespace, rollout)
        await then_images(kube, namespace, app, {image(app, "v2"): 3}, f"{app}: 3 pods v2, gray pod gone")
    assert await kube.get_or_none(r.INGRESS, f"{A}-canary", namespace) is None
    await _lane(door, {"User-Agent": "foo"}, {f"{A}:v2 -> {B}:v2"}, f"{version}: both approved", figures)


async def _set_image(kube: KubeClient, namespace: str, app: str, version: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image(app, version)}]}}}}
    await kube.patch(r.DEPLOYMENT, app, patch, namespace, patch_type="strategic")


async def _gray_pod(kube: KubeClient, namespace: str, app: str, version: str) -> Obj:
    """The one pod of the gray Deployment: new image, both gray labels, owned by a Deployment that is
    not the app's own."""

    async def probe() -> list[Obj]:
        listed = await kube.list(r.POD, namespace, label_selector=f"app={app}")
        return [
            p
            for p in listed["items"]
            if not p["metadata"].get("deletionTimestamp")
            and p["spec"]["containers"][0]["image"] == image(app, version)
            and (p.get("status") or {}).get("podIP")
        ]

    pods = await eventually(probe, lambda ps: len(ps) == 1, what=f"one {app} {version} pod", timeout=120)
    labels = pods[0]["metadata"].get("labels") or {}
    missing = {k: v for k, v in GRAY.items() if labels.get(k) != v}
    assert not missing, f"{app}'s gray pod lacks the gray labels {missing}; it has {labels}"
    listed = await kube.list(r.DEPLOYMENT, namespace, label_selector="rollouts.kruise.io/canary-deployment")
    canaries = [d for d in listed["items"] if d["spec"]["template"]["metadata"]["labels"].get("app") == app]
    assert [d["spec"]["replicas"] for d in canaries] == [1], f"{app}: one gray Deployment of 1 pod"
    return pods[0]


async def _canary_ingress(kube: KubeClient, namespace: str, figures: Figures) -> None:
    """The gateway hop, by object: graylane's MSE script on a canary Ingress Traefik reads."""

    async def probe() -> dict[str, str]:
        obj = await kube.get_or_none(r.INGRESS, f"{A}-canary", namespace)
        return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})

    wanted = {
        NGINX + "canary": "true",
        NGINX + "canary-by-header": "User-Agent",
        NGINX + "canary-by-header-value": "foo",
        "mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
    }
    got = await eventually(
        probe,
        lambda a: all(a.get(k) == v for k, v in wanted.items()),
        what="the lane's canary Ingress",
        timeout=60,
    )
    figures.add(TEST, f"gateway hop (object): canary Ingress {sorted(k for k in got if k in wanted)}")


async def _lane(
    door: Door, headers: dict[str, str], allowed: set[str], what: str, figures: Figures | None = None
) -> Tally:
    """Requests through the gateway until every lane seen is allowed and each allowed lane is seen."""
    tally = Tally()
    for _ in range(60):
        tally = await door.send(LANE_REQUESTS, headers=headers)
        if set(lane_counts(tally)) == allowed:
            break
    counts = lane_counts(tally)
    failed = [a.body for a in tally.failures][:1]
    assert set(counts) == allowed, f"{what}: lanes {counts}, expected exactly {sorted(allowed)}; {failed}"
    if figures is not None:
        figures.add(TEST, f"{what}, through Traefik with {headers or 'no header'}: {counts}")
    return tally


async def _direct(lab: TrafficLab, pod: Obj, allowed: set[str], what: str, figures: Figures) -> None:
    """Requests straight to a pod's IP (its route checked local to the namespace first): a -> b alone."""
    assert lab.ns is not None
    ip = pod["status"]["podIP"]
    tally = await send(8080, LANE_REQUESTS // 2, address=ip, check_route=lab.ns.check_local)
    counts = lane_counts(tally)
    assert set(counts) == allowed, f"{what}: lanes {counts}, expected {sorted(allowed)}"
    figures.add(TEST, f"{what}, direct to {pod['metadata']['name']}: {counts}")
