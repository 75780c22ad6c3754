"""Issue acceptance: end-to-end gray lanes with Kruise's full-link example applied verbatim.

The TrafficRouting `mse-traffic` (match `User-Agent: foo`, header `x-mse-tag: gray`) is shared by the
Rollouts `rollout-a` and `rollout-b` (v1alpha1 with the annotation, v1beta1 with `trafficRoutingRef`).
The example's YAML is the seed files in ../shared/seeds, read as they are; the Services, Deployments and
the MSE Ingress it needs are created here (Ingress class `mse`: the Lua script comes from the
Rollout's classType).
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
import yaml

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.events import CORE_EVENT
from tests.integration.builders import deployment, set_image_patch
from tests.integration.custom_fixtures import (
    ISTIO_VS,
    controller_sees_custom_kinds,
    custom_controller,
    gloo_crds,
    istio_crds,
    virtual_service,
)
from tests.integration.traffic_fixtures import gateway_api_crds
from tests.integration.waiting import eventually
from tests.seeds import seed_path

__all__ = [  # fixtures
    "controller_sees_custom_kinds",
    "custom_controller",
    "gateway_api_crds",
    "gloo_crds",
    "istio_crds",
]
pytestmark = pytest.mark.usefixtures("graylane_controller")

V1, V2 = "demo:v1", "demo:v2"
GRAY_LABELS = {"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}
NGINX = "nginx.ingress.kubernetes.io/"
MSE = "mse.ingress.kubernetes.io/"
SEED_ROUTE = {
    NGINX + "canary": "true",
    NGINX + "canary-by-header": "User-Agent",
    NGINX + "canary-by-header-value": "foo",
    MSE + "request-header-control-update": "x-mse-tag gray",
}
OWN_FINALIZER = "rollouts.kruise.io/trafficrouting"
APPS = {"rollout-a": "spring-cloud-a", "rollout-b": "spring-cloud-b"}


def seed(version: str) -> list[Obj]:
    """The page's TrafficRouting and Rollouts files, read from ../shared/seeds as they are."""
    files = ("003-full-link-trafficrouting.yaml", f"003-full-link-rollouts-{version}.yaml")
    return [d for f in files for d in yaml.safe_load_all(seed_path(f).read_text("utf-8")) if d]


def _service(namespace: str, app: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def _mse_ingress(namespace: str) -> Obj:
    backend = {"service": {"name": "spring-cloud-a", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "spring-cloud-a", "namespace": namespace},
        "spec": {
            "ingressClassName": "mse",
            "rules": [
                {
                    "host": "a.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


# -- given ---------------------------------------------------------------------------------------------


async def given_apps(kube: KubeClient, namespace: str, *, with_ingress: bool = True) -> None:
    for app in APPS.values():
        await kube.create(r.SERVICE, _service(namespace, app))
        await kube.create(r.DEPLOYMENT, deployment(app, namespace, replicas=3))
    if with_ingress:
        await kube.create(r.INGRESS, _mse_ingress(namespace))
    for app in APPS.values():
        await eventually(
            lambda a=app: images(kube, namespace, a), lambda s: s == {V1: 3}, what=f"{app} on v1"
        )


async def given_seed(kube: KubeClient, namespace: str, version: str, *, healthy: bool = True) -> None:
    """Apply the example verbatim (only the namespace is added), as `kubectl apply -n` would."""
    for doc in seed(version):
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "TrafficRouting":
            await kube.create(r.TRAFFICROUTING, doc)
        else:
            await kube.create(r.ROLLOUT if doc["apiVersion"].endswith("v1beta1") else r.ROLLOUT_V1ALPHA1, doc)
    if healthy:
        await then_traffic_routing(kube, namespace, "Healthy")
    for rollout in APPS:
        await eventually(
            lambda ro=rollout: kube.get(r.ROLLOUT, ro, namespace),
            lambda obj: (
                (obj.get("status", {}).get("canaryStatus") or {}).get("currentStepState") == "Completed"
            ),
            what=f"{rollout} Healthy with its first deploy completed",
        )


# -- when ----------------------------------------------------------------------------------------------


async def when_released(kube: KubeClient, namespace: str, app: str) -> None:
    await kube.patch(r.DEPLOYMENT, app, set_image_patch(V2), namespace, patch_type="strategic")


async def when_approved(kube: KubeClient, namespace: str, rollout: str) -> None:
    body = {"status": {"canaryStatus": {"currentStepState": "StepReady"}}}
    await kube.patch(r.ROLLOUT, rollout, body, namespace, subresource="status")


# -- then ----------------------------------------------------------------------------------------------


async def pods(kube: KubeClient, namespace: str, app: str) -> list[Obj]:
    listed = await kube.list(r.POD, namespace, label_selector=f"app={app}")
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def images(kube: KubeClient, namespace: str, app: str) -> dict[str, int]:
    found = await pods(kube, namespace, app)
    return dict(collections.Counter(p["spec"]["containers"][0]["image"] for p in found))


async def traffic_routing(kube: KubeClient, namespace: str, name: str = "mse-traffic") -> Obj:
    return await kube.get(r.TRAFFICROUTING, name, namespace)


async def then_traffic_routing(
    kube: KubeClient, namespace: str, phase: str, message: str = "", *, name: str = "mse-traffic"
) -> Obj:
    wanted = message or f"TrafficRouting is {phase if phase != 'Initial' else 'Initializing'}"
    return await eventually(
        lambda: traffic_routing(kube, namespace, name),
        lambda tr: (
            (tr.get("status", {}).get("phase"), tr.get("status", {}).get("message")) == (phase, wanted)
        ),
        what=f"TrafficRouting {name} {phase}: {wanted}",
        timeout=90,
    )


async def then_paused(kube: KubeClient, namespace: str, rollout: str) -> Obj:
    def paused(obj: Obj) -> bool:
        sub = obj.get("status", {}).get("canaryStatus") or {}
        return sub.get("currentStepIndex") == 1 and sub.get("currentStepState") == "StepPaused"

    return await eventually(
        lambda: kube.get(r.ROLLOUT, rollout, namespace),
        paused,
        what=f"{rollout} paused at step 1",
        timeout=90,
    )


async def then_completed(kube: KubeClient, namespace: str, rollout: str) -> None:
    def done(obj: Obj) -> bool:
        st = obj.get("status", {})
        conds = {c["type"]: c.get("status") for c in st.get("conditions", [])}
        return st.get("phase") == "Healthy" and conds.get("Succeeded") == "True"

    await eventually(
        lambda: kube.get(r.ROLLOUT, rollout, namespace), done, what=f"{rollout} completed", timeout=120
    )


async def canary_ingress(kube: KubeClient, namespace: str) -> Obj | None:
    return await kube.get_or_none(r.INGRESS, "spring-cloud-a-canary", namespace)


def routed(ing: Obj | None) -> dict[str, str]:
    annotations = ((ing or {}).get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith((NGINX, MSE))}


async def then_gray_pod(kube: KubeClient, namespace: str, app: str) -> None:
    """One gray pod of v2 carrying both gray labels next to the stable pods, which carry none."""
    found = await eventually(
        lambda: pods(kube, namespace, app),
        lambda ps: sorted(p["spec"]["containers"][0]["image"] for p in ps) == [V1, V1, V1, V2],
        what=f"{app}: 3 stable pods and 1 gray pod",
        timeout=90,
    )
    for pod in found:
        labels = pod["metadata"].get("labels") or {}
        gray = {k: labels.get(k) for k in GRAY_LABELS}
        if pod["spec"]["containers"][0]["image"] == V2:
            assert gray == GRAY_LABELS, f"the gray pod carries both gray labels: {labels}"
        else:
            assert set(gray.values()) == {None}, f"a stable pod carries no gray label: {labels}"


async def warnings(kube: KubeClient, namespace: str, name: str) -> list[str]:
    listed = await kube.list(CORE_EVENT, namespace, field_selector=f"involvedObject.name={name}")
    return [e["message"] for e in listed["items"] if e.get("type") == "Warning"]


# -- scenarios -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1alpha1", "v1beta1"])
async def test_two_rollouts_share_the_gray_lane_and_approval_restores_everything(
    kube: KubeClient, namespace: str, version: str
) -> None:
    await given_apps(kube, namespace)
    await given_seed(kube, namespace, version)
    assert OWN_FINALIZER in (await traffic_routing(kube, namespace))["metadata"]["finalizers"]
    if version == "v1beta1":  # stored as v1beta1: the field alone links it (Kruise would need the annotation)
        meta = (await kube.get(r.ROLLOUT, "rollout-a", namespace))["metadata"]
        assert "rollouts.kruise.io/trafficrouting" not in (meta.get("annotations") or {})
    stable_selector = (await kube.get(r.SERVICE, "spring-cloud-a", namespace))["spec"]["selector"]

    await when_released(kube, namespace, "spring-cloud-a")
    await then_paused(kube, namespace, "rollout-a")
    await then_gray_pod(kube, namespace, "spring-cloud-a")
    await then_traffic_routing(kube, namespace, "Progressing")
    ing = await eventually(
        lambda: canary_ingress(kube, namespace), lambda i: routed(i) == SEED_ROUTE, what="the gray lane route"
    )
    assert ing is not None
    owner = ing["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("TrafficRouting", "mse-traffic")
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "spring-cloud-a"
    assert await kube.get_or_none(r.SERVICE, "spring-cloud-a-canary", namespace) is None, "no canary Service"
    assert (await kube.get(r.SERVICE, "spring-cloud-a", namespace))["spec"]["selector"] == stable_selector

    await when_released(kube, namespace, "spring-cloud-b")
    await then_paused(kube, namespace, "rollout-b")
    await then_gray_pod(kube, namespace, "spring-cloud-b")
    finalizers = set((await traffic_routing(kube, namespace))["metadata"]["finalizers"])
    assert finalizers == {
        OWN_FINALIZER,
        "progressing.rollouts.kruise.io/rollout-a",
        "progressing.rollouts.kruise.io/rollout-b",
    }

    await when_approved(kube, namespace, "rollout-a")
    await then_completed(kube, namespace, "rollout-a")
    await eventually(
        lambda: images(kube, namespace, "spring-cloud-a"), lambda s: s == {V2: 3}, what="a on v2", timeout=90
    )
    tr = await traffic_routing(kube, namespace)
    assert tr["status"]["phase"] == "Progressing", "rollout-b still releases through the lane"
    assert routed(await canary_ingress(kube, namespace)) == SEED_ROUTE

    await when_approved(kube, namespace, "rollout-b")
    await then_completed(kube, namespace, "rollout-b")
    tr = await then_traffic_routing(kube, namespace, "Healthy")
    assert tr["metadata"]["finalizers"] == [OWN_FINALIZER]
    assert tr["status"]["observedGeneration"] == tr["metadata"]["generation"]
    assert (
        await eventually(
            lambda: canary_ingress(kube, namespace), lambda i: i is None, what="canary Ingress removed"
        )
        is None
    )
    for app in APPS.values():
        found = await eventually(
            lambda a=app: pods(kube, namespace, a),
            lambda ps: sorted(p["spec"]["containers"][0]["image"] for p in ps) == [V2, V2, V2],
            what=f"{app}: all pods on v2",
            timeout=90,
        )
        assert all(not set(GRAY_LABELS) & set(p["metadata"].get("labels") or {}) for p in found)
    assert (await kube.get(r.SERVICE, "spring-cloud-a", namespace))["spec"]["selector"] == stable_selector

    await kube.delete(r.TRAFFICROUTING, "mse-traffic", namespace)
    await eventually(
        lambda: kube.get_or_none(r.TRAFFICROUTING, "mse-traffic", namespace),
        lambda obj: obj is None,
        what="the TrafficRouting deleted once its finalizer is dropped",
    )


async def test_a_missing_ingress_keeps_the_stable_version_serving_everything(
    kube: KubeClient, namespace: str
) -> None:
    await given_apps(kube, namespace, with_ingress=False)
    await given_seed(kube, namespace, "v1beta1", healthy=False)
    not_found = "traffic routing is not ready: Ingress spring-cloud-a not found"
    await then_traffic_routing(kube, namespace, "Initial", not_found)
    assert not_found in await warnings(kube, namespace, "mse-traffic")

    await when_released(kube, namespace, "spring-cloud-a")
    held = f"traffic routing is not ready: TrafficRouting mse-traffic is Initial: {not_found}"
    rollout = await eventually(
        lambda: kube.get(r.ROLLOUT, "rollout-a", namespace),
        lambda obj: obj.get("status", {}).get("message") == held,
        what="rollout-a waiting with the reason",
        timeout=60,
    )
    assert rollout["status"]["conditions"][0]["reason"] == "Initializing"
    assert held in await warnings(kube, namespace, "rollout-a")
    assert await canary_ingress(kube, namespace) is None
    assert await images(kube, namespace, "spring-cloud-a") == {V1: 3}, "no gray pod: v1 serves everything"
    finalizers = (await traffic_routing(kube, namespace))["metadata"]["finalizers"]
    assert finalizers == [OWN_FINALIZER], "the lane was not joined"

    # The Ingress appears: the lane becomes usable and the release goes on by itself.
    await kube.create(r.INGRESS, _mse_ingress(namespace))
    await then_paused(kube, namespace, "rollout-a")
    await then_gray_pod(kube, namespace, "spring-cloud-a")
    await eventually(
        lambda: canary_ingress(kube, namespace), lambda i: routed(i) == SEED_ROUTE, what="the gray lane route"
    )

    # The Deployment gone, then the Rollout deleted mid-release (a namespace deletion removes both at
    # once): the Rollout still leaves the lane before its own finalizer comes off.
    await kube.delete(r.DEPLOYMENT, "spring-cloud-a", namespace)
    await eventually(
        lambda: kube.get_or_none(r.DEPLOYMENT, "spring-cloud-a", namespace),
        lambda obj: obj is None,
        what="the Deployment gone",
    )
    await kube.delete(r.ROLLOUT, "rollout-a", namespace)
    await eventually(
        lambda: kube.get_or_none(r.ROLLOUT, "rollout-a", namespace),
        lambda obj: obj is None,
        what="rollout-a finalised and gone",
        timeout=120,
    )
    left = await then_traffic_routing(kube, namespace, "Healthy")
    assert left["metadata"]["finalizers"] == [OWN_FINALIZER], "the lane was left"


ISTIO_LANE: Obj = {
    "apiVersion": "rollouts.kruise.io/v1alpha1",
    "kind": "TrafficRouting",
    "metadata": {"name": "istio-lane"},
    "spec": {
        "objectRef": [
            {
                "service": "web",
                "customNetworkRefs": [
                    {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "web-vs"}
                ],
            }
        ],
        "strategy": {
            "matches": [{"headers": [{"type": "Exact", "name": "User-Agent", "value": "foo"}]}],
            "requestHeaderModifier": {"set": [{"name": "x-mse-tag", "value": "gray"}]},
        },
    },
}


def _web_rollout(namespace: str) -> Obj:
    canary = {"enableExtraWorkloadForCanary": True, "steps": [{"replicas": 1, "pause": {}}]}
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "rollout-web", "namespace": namespace},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "strategy": {"canary": {**canary, "trafficRoutingRef": "istio-lane"}},
        },
    }


@pytest.mark.usefixtures("custom_controller")
async def test_a_lane_through_an_istio_virtual_service_routes_the_match_to_stable_and_restores_it(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(r.SERVICE, _service(namespace, "web"))
    await kube.create(ISTIO_VS, virtual_service(namespace))
    original = await kube.get(ISTIO_VS, "web-vs", namespace)
    await kube.create(r.DEPLOYMENT, deployment("web", namespace, replicas=3))
    await kube.create(
        r.TRAFFICROUTING, {**ISTIO_LANE, "metadata": {"name": "istio-lane", "namespace": namespace}}
    )
    await then_traffic_routing(kube, namespace, "Healthy", name="istio-lane")
    await kube.create(r.ROLLOUT, _web_rollout(namespace))
    await eventually(
        lambda: kube.get(r.ROLLOUT, "rollout-web", namespace),
        lambda obj: (obj.get("status", {}).get("canaryStatus") or {}).get("currentStepState") == "Completed",
        what="rollout-web Healthy with its first deploy completed",
    )

    await when_released(kube, namespace, "web")
    await then_paused(kube, namespace, "rollout-web")
    await then_traffic_routing(kube, namespace, "Progressing", name="istio-lane")
    # OnlyTrafficRouting: the canary "service" is the stable one; the mesh picks gray pods by the header.
    lane = {
        "match": [{"headers": {"User-Agent": {"exact": "foo"}}}],
        "route": [{"destination": {"host": "web", "subset": "canary"}}],
        "headers": {"request": {"set": {"x-mse-tag": "gray"}}},
    }
    vs = await eventually(
        lambda: kube.get(ISTIO_VS, "web-vs", namespace),
        lambda o: o["spec"]["http"] == [lane, *original["spec"]["http"]],
        what="the lane's match route first, the original routes after it",
    )
    assert "rollouts.kruise.io/original-spec-configuration" in vs["metadata"]["annotations"]
    assert await kube.get_or_none(r.SERVICE, "web-canary", namespace) is None, "no canary Service"

    await when_approved(kube, namespace, "rollout-web")
    await then_completed(kube, namespace, "rollout-web")
    await then_traffic_routing(kube, namespace, "Healthy", name="istio-lane")
    restored = await eventually(
        lambda: kube.get(ISTIO_VS, "web-vs", namespace),
        lambda o: o["spec"] == original["spec"],
        what="the original VirtualService",
    )
    assert restored["metadata"].get("labels") == original["metadata"].get("labels")
    assert restored["metadata"].get("annotations") == original["metadata"].get("annotations")
    assert await warnings(kube, namespace, "istio-lane") == []


def _kinds(docs: list[Obj]) -> list[tuple[str, str, str]]:
    return [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs]


def test_the_seed_files_hold_the_documented_objects() -> None:
    alpha, beta = seed("v1alpha1"), seed("v1beta1")
    assert _kinds(alpha) == [
        ("rollouts.kruise.io/v1alpha1", "TrafficRouting", "mse-traffic"),
        ("rollouts.kruise.io/v1alpha1", "Rollout", "rollout-a"),
        ("rollouts.kruise.io/v1alpha1", "Rollout", "rollout-b"),
    ]
    assert [k for _, k, _ in _kinds(beta)] == ["TrafficRouting", "Rollout", "Rollout"]
    assert alpha[0] == beta[0]
    refs: list[Any] = [d["spec"]["strategy"]["canary"].get("trafficRoutingRef") for d in beta[1:]]
    assert refs == ["mse-traffic", "mse-traffic"]
