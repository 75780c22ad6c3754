"""Per-app timelines built from watch events, and the controller latencies read off them.

What it does: each Rollout, Deployment and ReplicaSet event the benchmark receives is fed in with the
time it was received; the tracker remembers, per app, the first moment each milestone was seen:

- triggers (what the controller waits for): the release and the approval, written by the benchmark
  (the earlier of the write's response and the watch event showing it);
  a step's new pods Ready (canary style: the canary Deployment's status shows `availableReplicas >=
  target`, which is what graylane's canary style reads; partition style: the new ReplicaSet's
  `readyReplicas >= target`, which graylane's advanced-deployment controller reads); the stable
  Deployment fully updated and available (what finalising waits for);
- responses: the Rollout status showing the next state (step 1 started, step 1 StepPaused, step 2,
  step 2 Completed, Healthy with Succeeded=True).

A latency is response time minus trigger time, both taken in the benchmark process on receipt.
What it must not do: I/O or reading a clock: times are passed in.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.bench.workload import APP_LABEL, App, Style

__all__ = ["CANARY_DEPLOYMENT_LABEL", "Timeline", "Tracker", "Transition"]

Obj = Mapping[str, Any]
CANARY_DEPLOYMENT_LABEL = "rollouts.kruise.io/canary-deployment"
WORKLOAD_TYPE_LABEL = "rollouts.kruise.io/workload-type"


class Transition(enum.StrEnum):
    RELEASE = "release"  # image written -> Rollout status at step 1
    STEP1_PAUSED = "step1_paused"  # step-1 pods Ready -> step 1 StepPaused
    APPROVE = "approve"  # approval written -> Rollout status at step 2
    STEP2_COMPLETED = "step2_completed"  # step-2 pods Ready -> step 2 Completed
    HEALTHY = "healthy"  # stable Deployment fully updated -> Healthy, Succeeded=True


# The transitions the latency target is about: triggered by pods becoming Ready or an approval.
TARGET_TRANSITIONS = (
    Transition.STEP1_PAUSED,
    Transition.APPROVE,
    Transition.STEP2_COMPLETED,
    Transition.HEALTHY,
)


@dataclasses.dataclass
class Timeline:
    """First-seen times (seconds, benchmark monotonic clock) of one app's milestones."""

    set_up: float | None = None  # Rollout Healthy + Deployment labelled + all pods available
    release_written: float | None = None
    started: float | None = None
    pods_ready_rs: dict[int, float] = dataclasses.field(default_factory=dict)  # target -> time
    pods_ready_deployment: dict[int, float] = dataclasses.field(default_factory=dict)
    paused: float | None = None
    approved: float | None = None
    at_step2: float | None = None
    step2_completed: float | None = None
    stable_done: float | None = None
    healthy: float | None = None
    # what set_up waits for, seen separately
    rollout_healthy: bool = False
    workload_labelled: bool = False
    workload_available: bool = False


def _status(obj: Obj) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _image(obj: Obj) -> str:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def _int(mapping: Mapping[str, Any], key: str) -> int:
    return int(mapping.get(key) or 0)


def _succeeded(status: Mapping[str, Any]) -> bool:
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Succeeded" and c.get("status") == "True" for c in conditions)


def _first(current: float | None, now: float) -> float:
    return now if current is None else current


class Tracker:
    """Feeds watch events into per-app timelines; one instance per benchmark run."""

    def __init__(self, apps: Iterable[App], *, style: Style, replicas: int, new_image: str) -> None:
        self.style = style
        self.replicas = replicas
        self.new_image = new_image
        self.targets = {1: 1, 2: replicas}  # step -> new pods Ready that finish it
        self.timelines: dict[str, Timeline] = {app.key: Timeline() for app in apps}

    def _timeline(self, namespace: str, name: str) -> Timeline | None:
        return self.timelines.get(f"{namespace}/{name}")

    # -- events ---------------------------------------------------------------------------------

    def on_rollout(self, obj: Obj, now: float) -> None:
        meta = obj.get("metadata", {})
        line = self._timeline(str(meta.get("namespace")), str(meta.get("name")))
        if line is None:
            return
        status = _status(obj)
        canary = status.get("canaryStatus") or {}
        step, state = _int(canary, "currentStepIndex"), str(canary.get("currentStepState", ""))
        healthy = status.get("phase") == "Healthy"
        synced = _int(status, "observedGeneration") == _int(meta, "generation")
        line.rollout_healthy = line.rollout_healthy or (healthy and synced)
        self._maybe_set_up(line, now)
        if line.release_written is None:
            return
        if step == 1 and state == "StepReady":  # only an approval moves a paused step 1 to StepReady
            line.approved = _first(line.approved, now)
        if canary and step >= 1:
            line.started = _first(line.started, now)
        if step == 1 and state == "StepPaused":
            line.paused = _first(line.paused, now)
        if line.approved is not None and step >= 2:
            line.at_step2 = _first(line.at_step2, now)
        if step == 2 and state == "Completed":
            line.step2_completed = _first(line.step2_completed, now)
        if line.at_step2 is not None and healthy and _succeeded(status):
            line.healthy = _first(line.healthy, now)

    def on_deployment(self, obj: Obj, now: float) -> None:
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        namespace = str(meta.get("namespace"))
        if CANARY_DEPLOYMENT_LABEL in labels:
            line = self._timeline(namespace, str(labels[CANARY_DEPLOYMENT_LABEL]))
            if line is not None and _image(obj) == self.new_image:
                self._pods_ready(line.pods_ready_deployment, _int(_status(obj), "availableReplicas"), now)
            return
        line = self._timeline(namespace, str(meta.get("name")))
        if line is None or labels.get(APP_LABEL) != meta.get("name"):
            return
        line.workload_labelled = line.workload_labelled or WORKLOAD_TYPE_LABEL in labels
        line.workload_available = line.workload_available or _fully_available(obj)
        self._maybe_set_up(line, now)
        if _image(obj) == self.new_image:  # only the release writes the new image
            line.release_written = _first(line.release_written, now)
            if _fully_updated(obj):
                line.stable_done = _first(line.stable_done, now)

    def on_replicaset(self, obj: Obj, now: float) -> None:
        meta = obj.get("metadata", {})
        app = (meta.get("labels") or {}).get(APP_LABEL)
        line = self._timeline(str(meta.get("namespace")), str(app)) if app else None
        if line is not None and _image(obj) == self.new_image:
            self._pods_ready(line.pods_ready_rs, _int(_status(obj), "readyReplicas"), now)

    def release_written(self, key: str, now: float) -> None:
        """The patch's response arrived; the watch event showing the new image may come first or later."""
        line = self.timelines[key]
        line.release_written = _first(line.release_written, now)

    def approval_written(self, key: str, now: float) -> None:
        line = self.timelines[key]
        line.approved = _first(line.approved, now)

    def _pods_ready(self, seen: dict[int, float], ready: int, now: float) -> None:
        for target in self.targets.values():
            if ready >= target and target not in seen:
                seen[target] = now

    def _maybe_set_up(self, line: Timeline, now: float) -> None:
        if line.rollout_healthy and line.workload_labelled and line.workload_available:
            line.set_up = _first(line.set_up, now)

    # -- questions ------------------------------------------------------------------------------

    def count(self, milestone: str) -> int:
        return sum(1 for line in self.timelines.values() if getattr(line, milestone) is not None)

    def last(self, milestone: str) -> float | None:
        """When the last app reached `milestone`; None until all have."""
        times = [getattr(line, milestone) for line in self.timelines.values()]
        return None if any(t is None for t in times) else max(times)

    def trigger(self, line: Timeline, step: int, *, from_replicasets: bool = False) -> float | None:
        """When step `step`'s new pods were Ready, as the controller reads it for this style."""
        use_rs = from_replicasets or self.style is Style.PARTITION
        seen = line.pods_ready_rs if use_rs else line.pods_ready_deployment
        return seen.get(self.targets[step])

    def latencies(self, *, from_replicasets: bool = False) -> dict[Transition, list[float]]:
        """Seconds from trigger to response per transition, over the apps that saw both."""
        out: dict[Transition, list[float]] = {t: [] for t in Transition}
        for line in self.timelines.values():
            pairs = {
                Transition.RELEASE: (line.release_written, line.started),
                Transition.STEP1_PAUSED: (
                    self.trigger(line, 1, from_replicasets=from_replicasets),
                    line.paused,
                ),
                Transition.APPROVE: (line.approved, line.at_step2),
                Transition.STEP2_COMPLETED: (
                    self.trigger(line, 2, from_replicasets=from_replicasets),
                    line.step2_completed,
                ),
                Transition.HEALTHY: (line.stable_done, line.healthy),
            }
            for transition, (start, end) in pairs.items():
                if start is not None and end is not None:
                    out[transition].append(end - start)
        return out


def _fully_available(dep: Obj) -> bool:
    spec, status, meta = dep.get("spec", {}), _status(dep), dep.get("metadata", {})
    want = int(spec.get("replicas", 1))
    return _int(status, "observedGeneration") >= _int(meta, "generation") and _int(
        status, "availableReplicas"
    ) == want == _int(status, "replicas")


def _fully_updated(dep: Obj) -> bool:
    """Resumed, observed, every replica updated and available, no old pod left."""
    status = _status(dep)
    return (
        not dep.get("spec", {}).get("paused")
        and _fully_available(dep)
        and _int(status, "updatedReplicas") == int(dep.get("spec", {}).get("replicas", 1))
    )
