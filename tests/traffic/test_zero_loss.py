"""Item 5: no request is lost during a release. Three background streams (Traefik ingress-nginx,
Traefik HTTPRoute, Envoy HTTPRoute) run through a whole release (weighted step, approval, header
step, approval, completion with the native rolling update and the canary's removal) and a second
release that is rolled back at step 1. Every answer must be a 2xx from a version the release allows.
A failure names Envoy's own access-log lines of its non-2xx answers: their response flags say which
kind of failure it was (NC: the route named a cluster Envoy had not loaded; UH: no healthy upstream).
"""

from __future__ import annotations

import asyncio
import datetime as dt

from tests.integration.release_dsl import Release
from tests.traffic.apps import BOTH, V1, V2, V3, deploy_app, nginx_host, rollout, route_host
from tests.traffic.figures import Figures
from tests.traffic.probes import Door, nginx_door, only, route_doors, some, until_traffic

from graylane.trafficlab.client import Stream, Tally, answer_version
from graylane.trafficlab.lab import TrafficLab

TEST = "zero loss"
STEPS = [
    {"traffic": "20%", "replicas": 1, "pause": {}},
    {"matches": [{"headers": [{"name": "x-canary", "value": "beta"}]}], "replicas": 1, "pause": {}},
]


def test_no_request_lost_through_release_completion_and_rollback(
    lab: TrafficLab, namespace: str, figures: Figures
) -> None:
    lab.run(_scenario(lab, namespace, figures), timeout=1500)


async def _scenario(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    await deploy_app(lab.kube, namespace, nginx=True, route=True)
    rel = Release(lab.kube, namespace)
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    doors = [nginx_door(host=nginx_host(namespace)), *route_doors(route_host(namespace))]
    for door in doors:
        await until_traffic(door, only(V1), what="the app answering through the gateway", timeout=90)
    await rel.given_rollout(rollout(STEPS, BOTH))

    since = dt.datetime.now(dt.UTC)
    streams = _start(doors)
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    for door in doors:
        await until_traffic(door, some(V2), what="the 20% step", timeout=60)
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="5 v2 pods after completion", timeout=120)
    for door in doors:
        await until_traffic(door, only(V2), what="v2 only after completion", timeout=60)
    tallies = [await s.stop() for s in streams]
    await asyncio.sleep(1.5)  # Envoy flushes its access log every second
    _judge(figures, doors, tallies, {V1, V2}, "release v1 -> v2, completed", lab.envoy_failures_since(since))

    since = dt.datetime.now(dt.UTC)
    streams = _start(doors)
    await rel.when_image(V3)
    await rel.then_paused_at(1)
    for door in doors:
        await until_traffic(door, some(V3), what="v3 at step 1", timeout=60)
    await rel.when_image(V2)
    await rel.then_completed(succeeded=False)
    assert await rel.canary_deployments() == []
    for door in doors:
        await until_traffic(door, only(V2), what="v2 only after the rollback", timeout=60)
    tallies = [await s.stop() for s in streams]
    await asyncio.sleep(1.5)  # Envoy flushes its access log every second
    _judge(
        figures, doors, tallies, {V2, V3}, "release v2 -> v3, rolled back", lab.envoy_failures_since(since)
    )


def _start(doors: list[Door]) -> list[Stream]:
    streams = [Stream(d.port, path=d.path, headers=d.headers(), interval=0.02) for d in doors]
    for stream in streams:
        stream.start()
    return streams


def _judge(
    figures: Figures,
    doors: list[Door],
    tallies: list[Tally],
    allowed: set[str],
    what: str,
    envoy_failures: list[str],
) -> None:
    problems = []
    for door, tally in zip(doors, tallies, strict=True):
        bad = [a for a in tally.answers if not a.ok or answer_version(a) not in allowed]
        figures.add(
            TEST,
            f"{what}, {door.name}: {tally.describe()}; failed {len(bad)}",
            door=door.name,
            requests=len(tally),
            failed=len(bad),
            counts=tally.count(),
        )
        if bad:
            first = bad[0]
            problems.append(
                f"{door.name}: {len(bad)} of {len(tally)} failed, first {first.status} {first.body}"
            )
        assert len(tally) > 100, f"{door.name}: the stream sent only {len(tally)} requests"
    if envoy_failures:
        problems.append("Envoy's access log: " + " | ".join(envoy_failures[:5]))
    assert not problems, "; ".join(problems)
