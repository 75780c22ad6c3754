"""Item 4, the match kinds one provider has and the other has not, proven by requests (exact):
a cookie through the nginx canary annotations (Traefik ingress-nginx), query parameters, paths and
requestHeaderModifier through HTTPRoutes (Traefik and Envoy)."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

from tests.integration.release_dsl import Release
from tests.traffic.apps import NGINX_ONLY, ROUTE_ONLY, V1, V2, deploy_app, nginx_host, rollout, route_host
from tests.traffic.figures import Figures
from tests.traffic.probes import (
    MATCH_REQUESTS,
    judge_all,
    nginx_door,
    only,
    route_doors,
    some,
    until_traffic,
)

from graylane.trafficlab.client import Tally, answer_version
from graylane.trafficlab.lab import TrafficLab

TEST = "match kinds"


def test_cookie_through_ingress_nginx(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    lab.run(_cookie(lab, namespace, figures), timeout=900)


async def _cookie(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    await deploy_app(lab.kube, namespace, nginx=True, route=False)
    rel = Release(lab.kube, namespace)
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    door = nginx_door(host=nginx_host(namespace))
    await until_traffic(door, only(V1), what="the app answering through the gateway", timeout=90)
    # Kruise's convention: a header match named canary-by-cookie means the cookie of that name.
    step = {"matches": [{"headers": [{"name": "canary-by-cookie", "value": "beta-user"}]}], "replicas": 1}
    await rel.given_rollout(rollout([{**step, "pause": {}}], NGINX_ONLY))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await until_traffic(door, only(V2), what="cookie on v2", timeout=60, cookies={"beta-user": "always"})
    for cookies, image in (({"beta-user": "always"}, V2), ({}, V1), ({"beta-user": "never"}, V1)):
        tally = await door.send(MATCH_REQUESTS, cookies=cookies)
        figures.add(TEST, "cookie step: " + judge_all(door, tally, image, f"with cookie {cookies or 'none'}"))
    await rel.when_approved()
    await rel.then_completed()
    await until_traffic(door, only(V2), what="v2 only after completion", timeout=60)


def test_query_and_path_through_httproutes(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    lab.run(_query_and_path(lab, namespace, figures), timeout=900)


async def _query_and_path(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    await deploy_app(lab.kube, namespace, nginx=False, route=True)
    rel = Release(lab.kube, namespace)
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    doors = route_doors(route_host(namespace))
    for door in doors:
        await until_traffic(door, only(V1), what="the app answering through the gateway", timeout=90)
    steps = [
        {"matches": [{"queryParams": [{"name": "channel", "value": "beta"}]}], "replicas": 1, "pause": {}},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/beta"}}], "replicas": 1, "pause": {}},
    ]
    await rel.given_rollout(rollout(steps, ROUTE_ONLY))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    for door in doors:
        await until_traffic(door, only(V2), what="query on v2", timeout=60, path="/?channel=beta")
        for path, image in (("/?channel=beta", V2), ("/", V1), ("/?channel=alpha", V1)):
            tally = await door.send(MATCH_REQUESTS, path=path)
            figures.add(TEST, "query step: " + judge_all(door, tally, image, f"GET {path}"))
    await rel.when_approved()
    await rel.then_paused_at(2)
    for door in doors:
        await until_traffic(door, only(V2), what="path on v2", timeout=60, path="/beta/x")
        for path, image in (("/beta/x", V2), ("/", V1), ("/alpha", V1)):
            tally = await door.send(MATCH_REQUESTS, path=path)
            figures.add(TEST, "path step: " + judge_all(door, tally, image, f"GET {path}"))
    await rel.when_approved()
    await rel.then_completed()
    for door in doors:
        await until_traffic(door, only(V2), what="v2 only after completion", timeout=60, path="/beta/x")


def test_request_header_modifier_through_httproutes(
    lab: TrafficLab, namespace: str, figures: Figures
) -> None:
    lab.run(_header_modifier(lab, namespace, figures), timeout=900)


def _lane_header(tally: Tally) -> dict[str, int]:
    """Answers by image and the `x-lane` header the pod received (the gateway's rewrite)."""
    seen = (f"{answer_version(a)} x-lane={_header(a.body, 'x-lane')}" for a in tally.answers)
    return dict(sorted(collections.Counter(seen).items()))


def _header(body: Mapping[str, Any], name: str) -> str:
    headers = {k.lower(): v for k, v in (body.get("headers") or {}).items()}
    return str(headers.get(name, "-"))


async def _header_modifier(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    await deploy_app(lab.kube, namespace, nginx=False, route=True)
    rel = Release(lab.kube, namespace)
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    doors = route_doors(route_host(namespace))
    for door in doors:
        await until_traffic(door, only(V1), what="the app answering through the gateway", timeout=90)
    modifier = {"set": [{"name": "x-lane", "value": "gray"}]}
    steps = [
        {
            "matches": [{"headers": [{"name": "x-canary", "value": "beta"}]}],
            "requestHeaderModifier": modifier,
            "replicas": 1,
            "pause": {},
        },
        {"traffic": "50%", "requestHeaderModifier": modifier, "replicas": 1, "pause": {}},
    ]
    await rel.given_rollout(rollout(steps, ROUTE_ONLY))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    beta = {"x-canary": "beta"}
    for door in doors:
        await until_traffic(door, only(V2), what="header match on v2", timeout=60, headers=beta)
        for headers, want in ((beta, f"{V2} x-lane=gray"), ({}, f"{V1} x-lane=-")):
            counts = _lane_header(await door.send(MATCH_REQUESTS, headers=headers))
            assert counts == {want: MATCH_REQUESTS}, f"{door.name} with {headers}: {counts}"
            what = f"{door.name} with {headers or 'no header'}"
            figures.add(TEST, f"requestHeaderModifier with a match, {what}: {counts}")
    await rel.when_approved()
    await rel.then_paused_at(2)
    for door in doors:
        await until_traffic(door, some(V2), what="50% on v2", timeout=60)
        counts = _lane_header(await door.send(MATCH_REQUESTS))
        assert set(counts) == {f"{V2} x-lane=gray", f"{V1} x-lane=-"}, f"{door.name}: {counts}"
        figures.add(TEST, f"requestHeaderModifier with a weight (50%), {door.name}: {counts}")
    await rel.when_approved()
    await rel.then_completed()
