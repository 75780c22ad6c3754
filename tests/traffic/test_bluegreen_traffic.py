"""Issue 17 acceptance through real gateways: blue-green releases measured by requests.

Three doors (Traefik ingress-nginx, Traefik HTTPRoute, Envoy HTTPRoute) in front of a Deployment of 5
replicas released blue-green in two steps (50% pods + 0% traffic, then 100% pods + 100% traffic):
- the switch: 0% then 100% of requests on the new version, every old pod still up until completion,
  and zero failed requests in a background stream per door through the whole release;
- rollback at each step: every request back on the old version at once (the time from the rollback to
  the first all-old batch is printed), zero failed requests;
- disabled and deleted mid-way: the stable Service selects both versions before any old pod goes
  (Kruise's order for a hand-back), zero failed requests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.integration.release_dsl import Release
from tests.integration.waiting import eventually
from tests.traffic.apps import BOTH, V1, V2, deploy_app, nginx_host, route_host
from tests.traffic.figures import Figures
from tests.traffic.probes import Door, judge_all, nginx_door, only, route_doors, until_traffic

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.trafficlab.client import Stream, Tally, answer_version
from graylane.trafficlab.lab import TrafficLab

TEST = "blue-green"
SAMPLE = 200
STEPS: list[dict[str, Any]] = [
    {"replicas": "50%", "traffic": "0%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]


def blue_green(name: str = "demo") -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "strategy": {"blueGreen": {"steps": STEPS, "trafficRoutings": [{"service": name, **BOTH}]}},
        },
    }


def test_blue_green_switch_rollback_and_hand_back_by_requests(
    lab: TrafficLab, namespace: str, figures: Figures
) -> None:
    lab.run(_scenario(lab, namespace, figures), timeout=2000)


async def _scenario(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    kube = lab.kube
    await deploy_app(kube, namespace, nginx=True, route=True)
    rel = Release(kube, namespace, sub="blueGreenStatus")
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    doors = [nginx_door(host=nginx_host(namespace)), *route_doors(route_host(namespace))]
    for door in doors:
        await until_traffic(door, only(V1), what="the app answering through the gateway", timeout=90)
    await rel.given_rollout(blue_green())

    await _switch(rel, doors, figures)
    for step in (2, 1):
        await _rollback(rel, doors, figures, step)
    for how in ("disabled", "deleted"):
        await _hand_back(rel, doors, figures, how)


async def _switch(rel: Release, doors: list[Door], figures: Figures) -> None:
    streams = _start(doors)
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 3}, what="step 1: 5 old + 3 new pods")
    for door in doors:
        tally = await door.send(SAMPLE)
        figures.add(
            TEST, "step 1 (50% pods, 0% traffic): " + judge_all(door, tally, V1, "at 0%"), door=door.name
        )
    await rel.when_approved()
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 5, V2: 5}, what="step 2: 5 old + 5 new pods")
    for door in doors:
        await until_traffic(door, only(V2), what="100% on v2", timeout=60)
        tally = await door.send(SAMPLE)
        figures.add(
            TEST, "step 2 (100% pods, 100% traffic): " + judge_all(door, tally, V2, "at 100%"), door=door.name
        )
    await rel.then_pods({V1: 5, V2: 5}, what="the old pods still up at the last step")
    await rel.when_approved()
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="5 v2 pods after completion", timeout=120)
    for door in doors:
        await until_traffic(door, only(V2), what="v2 only after completion", timeout=60)
    _judge(figures, doors, [await s.stop() for s in streams], {V1, V2}, "release v1 -> v2, completed")


async def _rollback(rel: Release, doors: list[Door], figures: Figures, step: int) -> None:
    """Released v2 -> v1 up to `step`, then rolled back to v2: every request back on v2 at once."""
    streams = _start(doors)
    await rel.when_image(V1)
    await rel.then_paused_at(1)
    if step == 2:
        await rel.when_approved()
        await rel.then_paused_at(2)
        for door in doors:
            await until_traffic(door, only(V1), what="100% on the new version", timeout=60)
    started = time.monotonic()
    await rel.when_image(V2)
    for door in doors:
        at = await until_traffic(door, only(V2), what="every request back on the old version", timeout=60)
        figures.add(
            TEST,
            f"rollback at step {step}, {door.name}: all requests on the old version "
            f"{max(at - started, 0.0):.2f} s after the rollback",
            door=door.name,
            seconds=round(max(at - started, 0.0), 2),
        )
    await rel.then_completed(succeeded=False)
    await rel.then_pods({V2: 5}, what="the new pods removed after the rollback", timeout=120)
    _judge(figures, doors, [await s.stop() for s in streams], {V1, V2}, f"rolled back at step {step}")


async def _hand_back(rel: Release, doors: list[Door], figures: Figures, how: str) -> None:
    """Disabled or deleted at step 1: the stable Service selects both versions before an old pod goes."""
    image = V1 if how == "disabled" else V2  # each hand-back completes a release to `image`
    old = V2 if image == V1 else V1
    streams = _start(doors)
    await rel.when_image(image)
    # The pods, not the step: the previous release's status may still read "step 1, paused".
    await rel.then_pods({old: 5, image: 3}, what=f"step 1 of the release to {image}")
    await rel.then_paused_at(1)
    order = _Order(rel.kube, rel.namespace, old)
    watcher = asyncio.get_running_loop().create_task(order.watch())
    if how == "disabled":
        await rel.when_rollout_patched({"spec": {"disabled": True}})
    else:
        await rel.kube.delete(r.ROLLOUT, rel.name, rel.namespace)
    await rel.then_pods({image: 5}, what=f"the Deployment completes the release to {image}", timeout=180)
    order.stop()
    await watcher
    assert order.service_restored is not None, "the stable Service was never restored"
    assert order.old_pod_gone is not None
    assert order.service_restored <= order.old_pod_gone, (
        "an old pod went before the stable Service selected both"
    )
    figures.add(
        TEST,
        f"{how} at step 1: stable Service restored {order.old_pod_gone - order.service_restored:.2f} s "
        "before the first old pod went",
    )
    for door in doors:
        await until_traffic(door, only(image), what=f"{image} only after the hand-back", timeout=90)
    _judge(figures, doors, [await s.stop() for s in streams], {V1, V2}, f"{how} mid-way")
    if how == "disabled":
        await rel.when_rollout_patched({"spec": {"disabled": False}})
        await eventually(rel.rollout, lambda ro: ro["status"].get("phase") == "Healthy", what="re-enabled")


class _Order:
    """Polls (bounded) when the stable Service lost its revision selector and when an old pod went."""

    def __init__(self, kube: KubeClient, namespace: str, old: str) -> None:
        self.kube, self.namespace, self.old = kube, namespace, old
        self.service_restored: float | None = None
        self.old_pod_gone: float | None = None
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    async def watch(self, max_seconds: float = 300) -> None:
        deadline = time.monotonic() + max_seconds
        while not self._stop and time.monotonic() < deadline:
            now = time.monotonic()
            svc = await self.kube.get(r.SERVICE, "demo", self.namespace)
            if self.service_restored is None and "pod-template-hash" not in svc["spec"]["selector"]:
                self.service_restored = now
            pods = await self.kube.list(r.POD, self.namespace, label_selector="app=demo")
            live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
            olds = sum(p["spec"]["containers"][0]["image"] == self.old for p in live)
            if self.old_pod_gone is None and olds < 5:
                self.old_pod_gone = now
            await asyncio.sleep(0.05)


def _start(doors: list[Door]) -> list[Stream]:
    streams = [Stream(d.port, path=d.path, headers=d.headers(), interval=0.02) for d in doors]
    for stream in streams:
        stream.start()
    return streams


def _judge(figures: Figures, doors: list[Door], tallies: list[Tally], allowed: set[str], what: str) -> None:
    problems = []
    for door, tally in zip(doors, tallies, strict=True):
        bad = [a for a in tally.answers if not a.ok or answer_version(a) not in allowed]
        figures.add(
            TEST,
            f"{what}, {door.name}: {tally.describe()}; failed {len(bad)}",
            door=door.name,
            requests=len(tally),
            failed=len(bad),
        )
        if bad:
            problems.append(
                f"{door.name}: {len(bad)} of {len(tally)} failed, first {bad[0].status} {bad[0].body}"
            )
        assert len(tally) > 100, f"{door.name}: the stream sent only {len(tally)} requests"
    assert not problems, "; ".join(problems)
