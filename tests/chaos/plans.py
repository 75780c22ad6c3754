"""What the chaos suite releases: lanes (one application each), their Rollouts, and each release's script.

Pure: every choice comes from the `random.Random` passed in, so a seed gives the same lanes, plans,
release kinds and moments whatever the timing of the run. The replica arithmetic here is written from
the Kruise reference (§2.6), not imported from graylane, so it can judge graylane's.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
from collections.abc import Collection
from typing import Any

__all__ = [
    "GATEWAY_ROUTE",
    "INGRESS",
    "SERVICE",
    "V1ALPHA1",
    "V1BETA1",
    "Kind",
    "LaneSpec",
    "Moment",
    "Provider",
    "ReleaseScript",
    "Step",
    "Style",
    "allowed_new_pods",
    "draw_lane",
    "draw_release",
    "draw_steps",
    "rollout_manifest",
]

SERVICE = "web"
INGRESS = "web"
GATEWAY_ROUTE = "web-route"
V1ALPHA1 = "rollouts.kruise.io/v1alpha1"
V1BETA1 = "rollouts.kruise.io/v1beta1"
STYLE_ANNOTATION = "rollouts.kruise.io/rolling-style"
# The webhook's partition-percent-limit: a partition-style step with traffic moves at most this share.
PARTITION_TRAFFIC_LIMIT = 50


class Style(enum.StrEnum):
    CANARY = "canary"  # an extra canary Deployment (enableExtraWorkloadForCanary, BatchRelease "Canary")
    PARTITION = "partition"  # the Deployment itself, batch by batch


class Provider(enum.StrEnum):
    NONE = "none"
    NGINX = "nginx"
    GATEWAY = "gateway"


class Kind(enum.StrEnum):
    """What the user does during a release."""

    COMPLETE = "complete"  # approve every step
    ROLLBACK = "rollback"  # revert the template to the previous image
    DELETE = "delete"  # delete the Rollout
    DISABLE = "disable"  # spec.disabled: true
    NEWER = "newer"  # a newer image mid-release, then approve to the end


@dataclasses.dataclass(frozen=True)
class Step:
    replicas: int | str
    weight: int | None = None  # traffic percent, routed lanes only
    pause: int | None = None  # seconds; None waits for an approval


@dataclasses.dataclass(frozen=True)
class LaneSpec:
    namespace: str
    style: Style
    api_version: str
    provider: Provider
    replicas: int
    steps: tuple[Step, ...]
    grace: int

    @property
    def name(self) -> str:
        return "app"

    def describe(self) -> str:
        version = self.api_version.rsplit("/", 1)[1]
        return f"{self.namespace} ({self.style} style, {version}, {self.provider}, {self.replicas} pods)"


@dataclasses.dataclass(frozen=True)
class Moment:
    """When the user acts: `after` seconds from the release's start, or `delay` seconds after the
    Rollout reached step `step` (whichever is set)."""

    after: float | None = None
    step: int | None = None
    delay: float = 0.0

    def describe(self) -> str:
        if self.after is not None:
            return f"{self.after:.2f}s after the start"
        return f"{self.delay:.2f}s into step {self.step}"


@dataclasses.dataclass(frozen=True)
class ReleaseScript:
    kind: Kind
    moment: Moment
    think: float  # seconds between a step's pause and its approval

    def describe(self) -> str:
        return self.kind.value if self.kind == Kind.COMPLETE else f"{self.kind} {self.moment.describe()}"


_COMBOS = [(s, v, p) for s in Style for v in (V1ALPHA1, V1BETA1) for p in Provider]
_KIND_WEIGHTS = {Kind.COMPLETE: 4, Kind.ROLLBACK: 2, Kind.DELETE: 2, Kind.DISABLE: 2, Kind.NEWER: 2}


def draw_lane(rng: random.Random, index: int, namespace: str) -> LaneSpec:
    """Lane `index` takes style x version x provider combination `index mod 12`, so every one is covered."""
    style, version, provider = _COMBOS[index % len(_COMBOS)]
    replicas = rng.choice([3, 4, 5])
    steps = draw_steps(rng, style, provider, replicas)
    return LaneSpec(namespace, style, version, provider, replicas, steps, grace=rng.choice([0, 1]))


def draw_steps(rng: random.Random, style: Style, provider: Provider, replicas: int) -> tuple[Step, ...]:
    """2-4 steps, replicas non-decreasing, the last usually 100%; weights on routed lanes."""
    count = rng.choice([2, 3, 3, 4])
    routed = provider != Provider.NONE
    limit = PARTITION_TRAFFIC_LIMIT if style == Style.PARTITION and routed else 90
    last_full = rng.random() < 0.8
    middle = count - 1 if last_full else count
    pool = [p for p in (10, 20, 30, 40, 50, 60, 80, 90) if p <= limit]
    percents = sorted(rng.sample(pool, min(middle, len(pool))))
    as_counts = rng.random() < 0.25 and replicas > middle
    amounts: list[int | str] = (
        sorted(rng.sample(range(1, replicas), middle)) if as_counts else [f"{p}%" for p in percents]
    )
    steps = [
        Step(amount, weight=percents[i] if routed else None, pause=_pause(rng))
        for i, amount in enumerate(amounts)
    ]
    if last_full:
        steps.append(Step("100%", pause=_pause(rng)))
    return tuple(steps)


def _pause(rng: random.Random) -> int | None:
    return rng.choice([1, 2, 3]) if rng.random() < 0.45 else None


def draw_release(rng: random.Random, steps: int, allowed: Collection[str] = tuple(Kind)) -> ReleaseScript:
    kinds = [k for k in _KIND_WEIGHTS if k in allowed]
    kind = rng.choices(kinds, weights=[_KIND_WEIGHTS[k] for k in kinds])[0]
    think = rng.choice([0.0, 0.0, 0.5, 1.5])
    if kind in (Kind.DELETE, Kind.DISABLE) and rng.random() < 0.5:
        # The window issue 10 measured: 0.3-0.9 s after the release starts.
        return ReleaseScript(kind, Moment(after=rng.uniform(0.3, 0.9)), think)
    if kind != Kind.COMPLETE and rng.random() < 0.3:
        return ReleaseScript(kind, Moment(after=rng.uniform(0.1, 4.0)), think)
    return ReleaseScript(kind, Moment(step=rng.randint(1, steps), delay=rng.uniform(0.0, 2.0)), think)


def allowed_new_pods(style: Style, replicas: int | str, total: int) -> int:
    """New-version pods a step may have (reference §2.6): percentages round up; partition style keeps at
    least one old pod for a percentage below 100%; integers are taken as they are."""
    if isinstance(replicas, int):
        return max(0, min(replicas, total))
    percent = int(replicas.rstrip("%"))
    wanted = min(total, math.ceil(total * percent / 100))
    if style == Style.PARTITION and total > 1 and percent != 100:
        wanted = min(wanted, total - 1)
    return wanted


def rollout_manifest(lane: LaneSpec) -> dict[str, Any]:
    routing = _routing(lane)
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "name": lane.name}
    meta: dict[str, Any] = {"name": lane.name, "namespace": lane.namespace}
    if lane.api_version == V1ALPHA1:
        canary: dict[str, Any] = {"steps": [_v1alpha1_step(s) for s in lane.steps]}
        if routing:
            canary["trafficRoutings"] = [routing]
        # Without the annotation a v1alpha1 Rollout is canary style (conversion), as users write it.
        style = {STYLE_ANNOTATION: "partition"} if lane.style == Style.PARTITION else {}
        return {
            "apiVersion": V1ALPHA1,
            "kind": "Rollout",
            "metadata": {**meta, "annotations": style},
            "spec": {"objectRef": {"workloadRef": workload}, "strategy": {"canary": canary}},
        }
    canary = {
        "steps": [_v1beta1_step(s) for s in lane.steps],
        "enableExtraWorkloadForCanary": lane.style == Style.CANARY,
    }
    if routing:
        canary["trafficRoutings"] = [routing]
    return {
        "apiVersion": V1BETA1,
        "kind": "Rollout",
        "metadata": meta,
        "spec": {"workloadRef": workload, "strategy": {"canary": canary}},
    }


def _routing(lane: LaneSpec) -> dict[str, Any] | None:
    if lane.provider == Provider.NONE:
        return None
    base: dict[str, Any] = {"service": SERVICE, "gracePeriodSeconds": lane.grace}
    if lane.provider == Provider.NGINX:
        return {**base, "ingress": {"name": INGRESS, "classType": "nginx"}}
    return {**base, "gateway": {"httpRouteName": GATEWAY_ROUTE}}


def _pause_of(step: Step) -> dict[str, int]:
    return {} if step.pause is None else {"duration": step.pause}


def _v1alpha1_step(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"replicas": step.replicas, "pause": _pause_of(step)}
    if step.weight is not None:
        out["weight"] = step.weight
    return out


def _v1beta1_step(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"replicas": step.replicas, "pause": _pause_of(step)}
    if step.weight is not None:
        out["traffic"] = f"{step.weight}%"
    return out
