"""Issue acceptance: canary traffic through a Gateway API HTTPRoute (weights, match rules, exact restore)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.release_dsl import V2, V3, Release
from tests.integration.traffic_fixtures import (
    canary_rollout,
    controller_sees_gateway_api,
    gateway_api_crds,
    http_route,
    service,
    traffic_controller,
)
from tests.integration.waiting import eventually

__all__ = ["controller_sees_gateway_api", "gateway_api_crds", "traffic_controller"]  # fixtures
pytestmark = pytest.mark.usefixtures("traffic_controller")

ROUTING = {"gateway": {"httpRouteName": "web-route"}, "gracePeriodSeconds": 1}
MATCHES = [
    {"headers": [{"name": "x-canary", "value": "always"}]},
    {"queryParams": [{"name": "env", "type": "RegularExpression", "value": "gr(a|e)y"}]},
    {"path": {"type": "PathPrefix", "value": "/beta"}},
]


def _weights(route: Obj) -> list[tuple[str, int | None]]:
    return [(ref["name"], ref.get("weight")) for ref in route["spec"]["rules"][0]["backendRefs"]]


async def _route(kube: KubeClient, namespace: str) -> Obj:
    return await kube.get(r.HTTPROUTE, "web-route", namespace)


async def test_weights_then_matches_then_exact_restore(kube: KubeClient, namespace: str) -> None:
    weights = [20, 40, 60, 80]
    steps: list[dict[str, Any]] = [{"replicas": f"{w}%", "traffic": f"{w}%", "pause": {}} for w in weights]
    steps += [{"replicas": "80%", "matches": MATCHES, "pause": {}}, {"replicas": "100%"}]
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.HTTPROUTE, http_route(namespace))
    original = (await _route(kube, namespace))["spec"]
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(canary_rollout(ROUTING, steps))

    await rel.when_image(V2)
    for index, weight in enumerate(weights, start=1):
        await rel.then_paused_at(index)
        want = [("web", 100 - weight), ("web-canary", weight)]
        await eventually(
            lambda: _route(kube, namespace), lambda rt, w=want: _weights(rt) == w, what=f"weights {want}"
        )  # type: ignore[misc]
        await rel.when_approved()

    await rel.then_paused_at(5)
    route = await eventually(
        lambda: _route(kube, namespace), lambda rt: len(rt["spec"]["rules"]) == 3, what="a canary rule"
    )
    rules = route["spec"]["rules"]
    assert rules[:2] == original["rules"], "the original rules keep their shape and weights"
    canary = rules[2]
    assert [ref["name"] for ref in canary["backendRefs"]] == ["web-canary"]
    assert {"type": "PathPrefix", "value": "/beta"} in [m["path"] for m in canary["matches"]]
    assert any(
        m.get("headers") == [{"type": "Exact", "name": "x-canary", "value": "always"}]
        for m in canary["matches"]
    )
    assert any(
        m.get("queryParams") == [{"type": "RegularExpression", "name": "env", "value": "gr(a|e)y"}]
        for m in canary["matches"]
    )

    await rel.when_approved()
    await rel.then_completed()
    restored = await eventually(
        lambda: _route(kube, namespace), lambda rt: rt["spec"] == original, what="the original HTTPRoute spec"
    )
    assert "graylane.io/original-httproute-rules" not in (restored["metadata"].get("annotations") or {})
    assert await kube.get_or_none(r.SERVICE, "web-canary", namespace) is None


# -- make before break (docs/decisions.md "HTTPRoute: make before break") ------------------------------


def _canary_refs(rules: list[Obj]) -> list[Obj]:
    return [ref for rule in rules for ref in rule.get("backendRefs") or [] if ref["name"] == "web-canary"]


def _names_canary(rules: list[Obj]) -> bool:
    return bool(_canary_refs(rules))


def _sends_to_canary(rules: list[Obj]) -> bool:
    return any(ref.get("weight", 1) != 0 for ref in _canary_refs(rules))


async def _record_rules(kube: KubeClient, namespace: str, seen: list[list[Obj]], version: str) -> None:
    """Every version of the route's rules the API server stores, in order, from `version` on."""
    async for kind, obj in kube.watch(
        r.HTTPROUTE,
        namespace,
        resource_version=version,
        field_selector="metadata.name=web-route",
        timeout_seconds=600,
    ):
        if kind in ("ADDED", "MODIFIED"):
            seen.append(obj["spec"]["rules"])


async def test_the_canary_is_named_at_weight_zero_before_and_after_its_traffic(
    kube: KubeClient, namespace: str
) -> None:
    """A gateway fed over xDS (Envoy/Contour) loads a new backend and the route naming it in no fixed
    order: no stored version of the route may start or stop naming the canary Service in the same write
    that starts or stops sending it traffic - through a weighted step, a match step, completion, and a
    release rolled back at its weighted step."""
    steps: list[dict[str, Any]] = [
        {"replicas": 1, "traffic": "20%", "pause": {}},
        {"replicas": 1, "matches": [{"headers": [{"name": "x-canary", "value": "beta"}]}], "pause": {}},
    ]
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    route = await kube.create(r.HTTPROUTE, http_route(namespace))
    seen: list[list[Obj]] = [route["spec"]["rules"]]
    recorder = asyncio.get_running_loop().create_task(
        _record_rules(kube, namespace, seen, route["metadata"]["resourceVersion"])
    )
    try:
        await rel.given_deployment(replicas=5)
        await rel.given_rollout(canary_rollout(ROUTING, steps))
        await rel.when_image(V2)
        await rel.then_paused_at(1)
        await rel.when_approved()
        await rel.then_paused_at(2)
        await rel.when_approved()
        await rel.then_completed()
        await rel.when_image(V3)
        await rel.then_paused_at(1)
        await rel.when_image(V2)
        await rel.then_completed(succeeded=False)
        await eventually(
            lambda: _route(kube, namespace),
            lambda rt: not _names_canary(rt["spec"]["rules"]),
            what="the route restored",
        )
    finally:
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder
    assert sum(_sends_to_canary(rules) for rules in seen) >= 3, f"the canary never got traffic: {seen}"
    for before, after in itertools.pairwise(seen):
        if _names_canary(before) != _names_canary(after):
            moved = _sends_to_canary(before) or _sends_to_canary(after)
            assert not moved, (
                f"one write both {'added' if _names_canary(after) else 'removed'} the canary backend and "
                f"moved traffic: {before} -> {after}"
            )
