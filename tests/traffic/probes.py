"""Sending requests through the lab's gateways and judging what answered.

A `Door` is one way in: Traefik's ingress-nginx entryPoint, Traefik's Gateway listener, or Envoy's
(Contour's) Gateway listener. Weighted shares are judged per balancer: Traefik's smooth weighted
round robin is deterministic (within +-2 of the share over 1,000 requests, the phase depends on
earlier requests), Envoy picks at random (a 3-sigma binomial band). Match steps are exact.
Every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.trafficlab import gateways as gw
from graylane.trafficlab.client import Tally, send

WEIGHT_REQUESTS = 1_000
MATCH_REQUESTS = 200
POLL_SLACK = 0.5  # seconds: how late StepClock may see a write


@dataclasses.dataclass(frozen=True)
class Door:
    name: str
    port: int
    deterministic: bool
    host: str | None = None
    path: str = "/"

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**({"Host": self.host} if self.host else {}), **(extra or {})}

    async def send(
        self,
        n: int,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        path: str | None = None,
    ) -> Tally:
        return await send(
            self.port, n, path=path or self.path, headers=self.headers(headers), cookies=cookies
        )


def nginx_door(path: str = "/", host: str | None = None) -> Door:
    return Door("Traefik ingress-nginx", gw.NGINX_PORT, True, host, path)


def route_doors(host: str, path: str = "/") -> list[Door]:
    return [
        Door("Traefik HTTPRoute", gw.GATEWAY_PORT, True, host, path),
        Door("Envoy HTTPRoute", gw.ENVOY_PORT, False, host, path),
    ]


def band(door: Door, n: int, percent: float) -> float:
    """Allowed distance from n*p: 2 for Traefik's deterministic balancer, 3 sigma for Envoy's."""
    p = percent / 100
    return 2.0 if door.deterministic else 3 * math.sqrt(n * p * (1 - p))


def judge_weight(door: Door, tally: Tally, new: str, old: str, percent: float) -> str:
    counts = tally.count()
    assert set(counts) <= {new, old}, f"{door.name}: unexpected answers {counts}"
    n = len(tally)
    got, want = counts.get(new, 0), n * percent / 100
    allowed = band(door, n, percent)
    assert abs(got - want) <= allowed, (
        f"{door.name}: {got} of {n} on {new}, expected {want:.0f} +- {allowed:.0f}"
    )
    return f"{door.name} {tally.describe()} (expected {want:.0f} +- {allowed:.0f} on {new})"


def judge_all(door: Door, tally: Tally, image: str, what: str) -> str:
    counts = tally.count()
    assert counts == {image: len(tally)}, (
        f"{door.name} {what}: expected every answer from {image}, got {counts}"
    )
    return f"{door.name} {what}: {image} {len(tally)}/{len(tally)}"


async def until_traffic(
    door: Door,
    accept: Callable[[Tally], bool],
    *,
    what: str,
    timeout: float = 60,
    batch: int = 10,
    **request: Any,
) -> float:
    """Probe in small batches until `accept`; returns time.monotonic() of the first accepted batch."""
    deadline = time.monotonic() + timeout
    last: Tally | None = None
    while time.monotonic() < deadline:
        last = await door.send(batch, **request)
        if accept(last):
            return last.answers[-1].at
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"{door.name}: traffic never showed {what} in {timeout:.0f}s; last: {last and last.count()}"
    )


def only(image: str) -> Callable[[Tally], bool]:
    return lambda tally: tally.count() == {image: len(tally)}


def some(image: str) -> Callable[[Tally], bool]:
    return lambda tally: image in tally.count() and not tally.failures


class StepClock:
    """Polls the Rollout, the canary Ingress and the HTTPRoute every 50 ms (bounded) and remembers when
    each (step, state) was first seen and when each routing object last changed, for step-to-traffic
    latencies."""

    def __init__(self, kube: KubeClient, namespace: str, name: str, resource: r.Resource = r.ROLLOUT):
        self.kube, self.namespace, self.name, self.resource = kube, namespace, name, resource
        self.first_seen: dict[tuple[int, str], float] = {}
        self.changes: dict[str, list[float]] = {"Ingress": [], "HTTPRoute": []}
        self._signatures: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> StepClock:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self, max_seconds: float = 900) -> None:
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            ro: Obj = await self.kube.get(self.resource, self.name, self.namespace)
            sub = (ro.get("status") or {}).get("canaryStatus") or {}
            key = (int(sub.get("currentStepIndex") or 0), str(sub.get("currentStepState") or ""))
            self.first_seen.setdefault(key, time.monotonic())
            ingress = await self.kube.get_or_none(r.INGRESS, f"{self.name}-canary", self.namespace)
            route = await self.kube.get_or_none(r.HTTPROUTE, self.name, self.namespace)
            self._note("Ingress", ((ingress or {}).get("metadata") or {}).get("annotations"))
            self._note("HTTPRoute", ((route or {}).get("spec") or {}).get("rules"))
            await asyncio.sleep(0.05)

    def _note(self, kind: str, content: object) -> None:
        signature = json.dumps(content, sort_keys=True)
        if self._signatures.get(kind) != signature:
            self._signatures[kind] = signature
            self.changes[kind].append(time.monotonic())

    def routing_started(self, step: int) -> float | None:
        """When the Rollout first showed `step` past its pod upgrade (its traffic being routed)."""
        states = ("StepTrafficRouting", "StepMetricsAnalysis", "StepPaused", "StepReady", "Completed")
        seen = [t for (i, s), t in self.first_seen.items() if i == step and s in states]
        return min(seen) if seen else None

    def paused(self, step: int) -> float | None:
        return self.first_seen.get((step, "StepPaused"))

    def written_before(self, kind: str, at: float) -> float | None:
        """When graylane wrote the `kind` change that the traffic seen at `at` follows: the last change
        seen before `at`, or one seen just after it (within POLL_SLACK: a gateway may serve a change
        before the 50 ms poll, three GETs long, sees it); None if no change was seen."""
        late = [t for t in self.changes[kind] if at < t <= at + POLL_SLACK]
        if late:
            return min(late[0], at)
        earlier = [t for t in self.changes[kind] if t <= at]
        return max(earlier) if earlier else None

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
