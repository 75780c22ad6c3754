"""Gloo Edge's two-phase canary (the shipped gateway.solo.io VirtualService script) on the real API server.

The Gloo CRD is Gloo's own generated schema (custom_fixtures.gloo_crds), so every VirtualService the
controller writes is validated by the API server; a refused write leaves the Rollout stuck with a
Warning Event, which fails the waits below and the final check for Warnings.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.custom_fixtures import (
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
        "matchers": [{"prefix": "/", "headers": [{"name": "stage", "value": "canary", "regex": False}]}],
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
