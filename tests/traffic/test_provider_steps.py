"""Item 4: every step kind the gateways implement, proven by requests (weights over 1,000 requests;
matches exact), and item 8: the time from a step to the traffic following it.

One Rollout routes through an nginx Ingress (Traefik's ingress-nginx provider) and an HTTPRoute on
two Gateways (Traefik and Envoy/Contour) at once, so each step is measured through three doors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.integration.release_dsl import Release
from tests.traffic.apps import BOTH, V1, V2, V3, deploy_app, nginx_host, rollout, route_host
from tests.traffic.figures import Figures
from tests.traffic.probes import (
    MATCH_REQUESTS,
    WEIGHT_REQUESTS,
    Door,
    StepClock,
    judge_all,
    judge_weight,
    nginx_door,
    only,
    route_doors,
    some,
    until_traffic,
)

from graylane.trafficlab.client import Tally
from graylane.trafficlab.lab import TrafficLab

TEST = "provider steps"
STEPS = [
    {"traffic": "20%", "replicas": 1, "pause": {}},
    {"matches": [{"headers": [{"name": "x-canary", "value": "beta"}]}], "replicas": 1, "pause": {}},
    {
        "matches": [
            {"headers": [{"type": "RegularExpression", "name": "x-canary", "value": "^beta-[0-9]+$"}]}
        ],
        "replicas": 1,
        "pause": {},
    },
]


def test_weight_header_regex_completion_and_rollback(
    lab: TrafficLab, namespace: str, figures: Figures
) -> None:
    lab.run(_scenario(lab, namespace, figures), timeout=1200)


async def _scenario(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    kube = lab.kube
    await deploy_app(kube, namespace, nginx=True, route=True)
    rel = Release(kube, namespace)
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    doors = [nginx_door(host=nginx_host(namespace)), *route_doors(route_host(namespace))]
    for door in doors:
        await until_traffic(door, only(V1), what="the app answering through the gateway", timeout=90)
    await rel.given_rollout(rollout(STEPS, BOTH))

    clock = StepClock(kube, namespace, "demo").start()
    try:
        await rel.when_image(V2)
        await _follow(figures, clock, 1, doors, some(V2), "weight 20%")
        await rel.then_paused_at(1)
        for door in doors:
            tally = await door.send(WEIGHT_REQUESTS)
            figures.add(
                TEST,
                "step 1 (20%) " + judge_weight(door, tally, V2, V1, 20),
                door=door.name,
                counts=tally.count(),
            )

        await rel.when_approved()
        await _follow(figures, clock, 2, doors, only(V2), "header x-canary: beta", {"x-canary": "beta"})
        await rel.then_paused_at(2)
        await _judge_match(
            figures, doors, "step 2 header x-canary: beta", {"x-canary": "beta"}, {"x-canary": "alpha"}
        )

        await rel.when_approved()
        await rel.then_paused_at(3)
        await _judge_match(
            figures,
            doors,
            "step 3 header regex ^beta-[0-9]+$",
            {"x-canary": "beta-42"},
            {"x-canary": "beta-x"},
        )

        await rel.when_approved()
        await rel.then_completed()
        for door in doors:
            await until_traffic(door, only(V2), what="v2 only after completion", timeout=60)
            figures.add(
                TEST, "completed: " + judge_all(door, await door.send(MATCH_REQUESTS), V2, "all requests")
            )

        # Rollback: v3 reaches step 1, then the image goes back to v2.
        await rel.when_image(V3)
        await rel.then_paused_at(1)
        for door in doors:
            await until_traffic(door, some(V3), what="v3 at step 1", timeout=60)
            tally = await door.send(WEIGHT_REQUESTS)
            figures.add(TEST, "rollback release, step 1 " + judge_weight(door, tally, V3, V2, 20))
        await rel.when_image(V2)
        await rel.then_completed(succeeded=False)
        for door in doors:
            await until_traffic(door, only(V2), what="v2 only after the rollback", timeout=60)
            figures.add(
                TEST, "rolled back: " + judge_all(door, await door.send(MATCH_REQUESTS), V2, "all requests")
            )
    finally:
        clock.stop()


async def _judge_match(
    figures: Figures, doors: list[Door], what: str, matching: dict[str, str], other: dict[str, str]
) -> None:
    for door in doors:
        await until_traffic(door, only(V2), what=f"{what} on v2", timeout=60, headers=matching)
        hit = await door.send(MATCH_REQUESTS, headers=matching)
        figures.add(TEST, f"{what}: " + judge_all(door, hit, V2, f"with {matching}"))
        for headers in ({}, other):
            miss = await door.send(MATCH_REQUESTS, headers=headers)
            figures.add(TEST, f"{what}: " + judge_all(door, miss, V1, f"with {headers or 'no header'}"))


async def _follow(
    figures: Figures,
    clock: StepClock,
    step: int,
    doors: list[Door],
    accept: Callable[[Tally], bool],
    what: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Step-to-traffic latency, per door (probed at the same time): from graylane's write of the
    gateway object the door reads, from the start of the step's routing (graylane's own grace period
    included), and where the Rollout's StepPaused fell."""
    probes = (until_traffic(d, accept, what=what, timeout=120, headers=headers) for d in doors)
    seen = await asyncio.gather(*probes)
    for _ in range(1800):  # the status may come after the traffic: wait for it, at most 90 s
        if clock.paused(step) is not None:
            break
        await asyncio.sleep(0.05)
    started, paused = clock.routing_started(step), clock.paused(step)
    assert started is not None, f"the Rollout never showed step {step} routing"
    assert paused is not None, f"the Rollout never paused at step {step}"
    for door, at in zip(doors, seen, strict=True):
        kind = "Ingress" if "nginx" in door.name else "HTTPRoute"
        written = clock.written_before(kind, at)
        assert written is not None, f"no {kind} change seen before the traffic followed"
        figures.add(
            TEST,
            f"step {step} ({what}) reached {door.name} {at - written:.2f} s after graylane wrote the {kind} "
            f"({at - started:.2f} s after the step's routing began; StepPaused {paused - at:+.2f} s later)",
            step=step,
            door=door.name,
            after_write_seconds=round(at - written, 3),
            after_routing_start_seconds=round(at - started, 3),
            paused_after_traffic_seconds=round(paused - at, 3),
        )
