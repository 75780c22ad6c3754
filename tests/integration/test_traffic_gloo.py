"""Gloo Edge's two-phase canary (the shipped gateway.solo.io VirtualService script) on the real API server.

The Gloo CRD is Gloo's own generated schema (custom_fixtures.gloo_crds), so every VirtualService the
controller writes is validated by the API server; a refused write leaves the Rollout stuck with a
Warning Event, which fails the waits below and the final check for Warnings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graylane.controller.app import ensure_namespace
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.custom_fixtures import (
    GLOO_UPSTREAM,
    GLOO_VS,
    controller_sees_custom_kinds,
    custom_controller,
    gloo_crds,
    gloo_virtual_service,
    istio_crds,
)
from tests.integration.release_dsl import V2, Release
from tests.integration.traffic_fixtures import canary_rollout, gateway_api_crds, service, warning_events
from tests.integration.waiting import eventually
from tests.seeds import seed_documents

__all__ = [  # fixtures
    "controller_sees_custom_kinds",
    "custom_controller",
    "gateway_api_crds",
    "gloo_crds",
    "istio_crds",
]
pytestmark = pytest.mark.usefixtures("custom_controller")

ORIGINAL_SPEC = "rollouts.kruise.io/original-spec-configuration"
GLOO_REF = {"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService", "name": "web-gloo"}


async def _vs(kube: KubeClient, namespace: str) -> Obj:
    return await kube.get(GLOO_VS, "web-gloo", namespace)


def _routes(vs: Obj) -> list[Obj]:
    return list(vs["spec"]["virtualHost"]["routes"])


def _kube(namespace: str, service_name: str) -> Obj:
    return {"kube": {"ref": {"name": service_name, "namespace": namespace}, "port": 80}}


def _split(namespace: str, stable: int, canary: int) -> Obj:
    return {
        "multi": {
            "destinations": [
                {"destination": _kube(namespace, "web"), "weight": stable},
                {"destination": _kube(namespace, "web-canary"), "weight": canary},
            ]
        }
    }


async def _then_routes(kube: KubeClient, namespace: str, want: list[Obj], what: str) -> Obj:
    return await eventually(lambda: _vs(kube, namespace), lambda vs: _routes(vs) == want, what=what)


async def test_gloo_header_phase_then_weights_then_exact_restore(kube: KubeClient, namespace: str) -> None:
    steps: list[dict[str, Any]] = [
        {"replicas": 1, "matches": [{"headers": [{"name": "stage", "value": "canary"}]}], "pause": {}},
        {"replicas": "50%", "traffic": "50%", "pause": {}},
        {"replicas": "50%", "traffic": "100%", "pause": {}},
        # No traffic field: the routes stay as step 3 left them. (A pause on the last step is skipped,
        # so 0/100 is observed at step 3.)
        {"replicas": "100%"},
    ]
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(GLOO_VS, gloo_virtual_service(namespace))
    original = await _vs(kube, namespace)
    static, main = _routes(original)
    await rel.given_deployment(replicas=4)
    await rel.given_rollout(canary_rollout({"customNetworkRefs": [GLOO_REF], "gracePeriodSeconds": 1}, steps))

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    # Phase one: requests with `stage: canary` go to the canary Service, everything else to the stable.
    by_header = {
        **main,
        "name": "main-canary",
        "matchers": [{"prefix": "/", "headers": [{"name": "stage", "value": "canary"}]}],
        "routeAction": {"single": _kube(namespace, "web-canary")},
    }
    vs = await _then_routes(
        kube, namespace, [static, by_header, main], "the header route before the main one"
    )
    assert ORIGINAL_SPEC in vs["metadata"]["annotations"], "the original is kept for finalising"

    # Phase two: weighted destinations on the main route, the header route gone again.
    for step, (stable, canary) in ((2, (50, 50)), (3, (0, 100))):
        await rel.when_approved()
        await rel.then_paused_at(step)
        weighted = {**main, "routeAction": _split(namespace, stable, canary)}
        await _then_routes(kube, namespace, [static, weighted], f"main route {stable}/{canary}")

    await rel.when_approved()
    await rel.then_completed()  # step 4, then finalising
    restored = await eventually(
        lambda: _vs(kube, namespace),
        lambda o: o["spec"] == original["spec"],
        what="the original Gloo VirtualService",
    )
    assert restored["metadata"].get("labels") == original["metadata"].get("labels")
    assert restored["metadata"].get("annotations") == original["metadata"].get("annotations")
    assert await kube.get_or_none(r.SERVICE, "web-canary", namespace) is None
    # The one route left sends to the stable Service, which now selects only the new version's pods.
    stable_service = await kube.get(r.SERVICE, "web", namespace)
    selector = ",".join(f"{k}={v}" for k, v in stable_service["spec"]["selector"].items())
    pods = (await kube.list(r.POD, namespace, label_selector=selector))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert live
    assert {p["spec"]["containers"][0]["image"] for p in live} == {V2}
    refused = [
        e["message"] for e in await warning_events(kube, namespace) if "web-gloo" in e.get("message", "")
    ]
    assert refused == [], "every VirtualService write was accepted by the API server"


# -- seed 001: Gloo's canary guide, through an Upstream with subsets by the pod label `version` -------


def _seed(name: str) -> Obj:
    [doc] = seed_documents(name)
    return doc


def _echo_deployment(namespace: str) -> Obj:
    """The guide's echo-v1 Deployment as the one workload a Rollout releases: named `echo`, selecting
    app=echo only (a release changes the `version` label, which a selector may not)."""
    dep = _seed("001-gloo-01-echo-v1-deployment.yaml")
    dep["metadata"] = {"name": "echo", "namespace": namespace}
    dep["spec"]["replicas"] = 2
    dep["spec"]["selector"] = {"matchLabels": {"app": "echo"}}
    return dep


def _routing(vs: Obj) -> list[tuple[Any, dict[str, int]]]:
    """What a VirtualService does with requests: per route its matchers and the share of each subset
    (a single destination is 100%; zero-weight destinations receive nothing)."""
    out = []
    for route in vs["spec"]["virtualHost"]["routes"]:
        action = route["routeAction"]
        if "single" in action:
            shares = {json.dumps(action["single"], sort_keys=True): 100}
        else:
            total = sum(d.get("weight", 0) for d in action["multi"]["destinations"])
            shares = {
                json.dumps(d["destination"], sort_keys=True): 100 * d["weight"] // total
                for d in action["multi"]["destinations"]
                if d.get("weight")
            }
        out.append((route["matchers"], shares))
    return out


async def test_gloo_guide_upstream_subsets_through_both_phases(kube: KubeClient, namespace: str) -> None:
    """Issue 15, item 11: the guide's VirtualService objects (vs-2, phase 2 at 100/0, 50/50, 0/100, the
    decommissioned route) written by a Rollout; the old script knew only Service destinations."""
    await ensure_namespace(kube, "gloo-system")
    upstream = _seed("001-gloo-03-upstream.yaml")
    if await kube.get_or_none(GLOO_UPSTREAM, "echo", "gloo-system") is None:
        await kube.create(GLOO_UPSTREAM, upstream)
    vs_1 = {**_seed("001-gloo-05-vs-1-subset-v1.yaml")}
    vs_1["metadata"] = {**vs_1["metadata"], "namespace": namespace}
    await kube.create(GLOO_VS, vs_1)
    await kube.create(
        r.SERVICE, {**_seed("001-gloo-02-echo-service.yaml"), "metadata": {"name": "echo"}}, namespace
    )
    rel = Release(kube, namespace, name="echo")
    await kube.create(r.DEPLOYMENT, _echo_deployment(namespace))
    await eventually(rel.pods, lambda pods: len(pods) == 2, what="2 echo v1 pods")
    stage = {"headers": [{"name": "stage", "value": "canary"}]}
    steps: list[dict[str, Any]] = [
        {"replicas": 1, "matches": [stage], "pause": {}},
        {"replicas": 1, "matches": [stage], "traffic": "50%", "pause": {}},
        {"replicas": 1, "matches": [stage], "traffic": "100%", "pause": {}},
        {"replicas": "100%"},
    ]
    ref = {"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService", "name": "echo"}
    rollout = canary_rollout({"customNetworkRefs": [ref], "gracePeriodSeconds": 1}, steps)
    rollout["metadata"]["name"] = "echo"
    rollout["spec"]["workloadRef"]["name"] = "echo"
    rollout["spec"]["strategy"]["canary"]["trafficRoutings"][0]["service"] = "echo"
    del rollout["spec"]["strategy"]["canary"]["enableExtraWorkloadForCanary"]  # partition style
    await rel.given_rollout(rollout)

    release = {
        "spec": {
            "template": {
                "metadata": {"labels": {"version": "v2"}},
                "spec": {"containers": [{"name": "echo-v1", "args": ["-text=version:v2", "-listen=:8080"]}]},
            }
        }
    }
    await kube.patch(r.DEPLOYMENT, "echo", release, namespace, patch_type="strategic")
    vs_2 = _seed("001-gloo-07-vs-2-header-canary.yaml")
    pages = ["001-gloo-08-vs-phase2-weights-100-0.yaml", "001-gloo-09-vs-phase2-50-50.yaml"]
    pages.append("001-gloo-10-vs-phase2-0-100.yaml")
    for index, page in enumerate(pages, start=1):
        await rel.then_paused_at(index)
        want = _seed(page)["spec"]
        vs = await eventually(
            lambda: kube.get(GLOO_VS, "echo", namespace),
            lambda o, want=want: o["spec"] == want,
            what=f"the VirtualService of {page}",
        )
        if index == 1:
            # Phase one: header `stage: canary` to v2, the rest to v1, as vs-2 routes.
            assert _routing(vs) == _routing(vs_2)
        await rel.when_approved()

    await rel.then_completed()
    done = await eventually(
        lambda: kube.get(GLOO_VS, "echo", namespace),
        lambda o: o["spec"] == _seed("001-gloo-11-vs-decommissioned-v1.yaml")["spec"],
        what="one route to the v2 subset (the guide's decommissioned state)",
    )
    assert ORIGINAL_SPEC not in (done["metadata"].get("annotations") or {})
    pods = await rel.pods()
    assert {p["metadata"]["labels"]["version"] for p in pods} == {"v2"}
    refused = [e["message"] for e in await warning_events(kube, namespace) if "echo" in e.get("message", "")]
    assert refused == [], "every write was accepted by the API server"
