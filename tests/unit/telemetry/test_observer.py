"""The observer's durations (fake clock) and the per-Rollout info and traffic series."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from prometheus_client import CollectorRegistry

from graylane.kube.informer import EventType
from graylane.telemetry.metrics import SERIES, RolloutMetrics
from graylane.telemetry.observer import RolloutObserver
from graylane.telemetry.routed import ObjectRef


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rollout(phase: str, step: int = 0, state: str = "", succeeded: str = "True") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Succeeded", "status": succeeded}]}
    if step:
        status["canaryStatus"] = {"currentStepIndex": step, "currentStepState": state}
    return {
        "metadata": {"name": "demo", "namespace": "ns", "uid": "u1", "resourceVersion": "1"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {
                "canary": {
                    "enableExtraWorkloadForCanary": True,
                    "steps": [{"replicas": 1, "traffic": "20%"}],
                    "trafficRoutings": [{"service": "web", "ingress": {"name": "web"}}],
                }
            },
        },
        "status": status,
    }


def metrics(
    registry: CollectorRegistry, objects: list[dict[str, Any]], found: dict[ObjectRef, Any]
) -> RolloutMetrics:
    return RolloutMetrics(registry, lambda: objects, lambda ns, ref: found.get(ref), runtime=False)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_steps_and_releases_are_timed_from_the_transitions_seen() -> None:
    registry, clock = CollectorRegistry(), Clock()
    m = metrics(registry, [], {})
    observer = RolloutObserver(None, None, m, lambda: True, clock=clock)  # type: ignore[arg-type]
    history = [
        rollout("Healthy"),
        rollout("Progressing", 1, "StepUpgrade"),
        rollout("Progressing", 1, "StepPaused"),
        rollout("Progressing", 2, "StepUpgrade"),
        rollout("Progressing", 2, "Completed"),
        rollout("Healthy", 2, "Completed"),
    ]
    for old, new in itertools.pairwise(history):
        clock.now += 30
        observer.on_event(EventType.MODIFIED, old, new)
    count = "graylane_rollout_step_duration_seconds_count"
    assert sample(registry, count, namespace="ns", strategy="canary") == 2
    assert (
        sample(registry, "graylane_rollout_step_duration_seconds_sum", namespace="ns", strategy="canary")
        == 60 + 30
    )
    release = "graylane_rollout_release_duration_seconds_sum"
    assert sample(registry, release, namespace="ns", strategy="canary", result="succeeded") == 120
    assert not observer._timings  # nothing kept once the release is over (issue 14: at rest)


def test_a_rollout_at_rest_keeps_no_timing() -> None:
    observer = RolloutObserver(None, None, metrics(CollectorRegistry(), [], {}), lambda: True, clock=Clock())  # type: ignore[arg-type]
    observer.on_event(EventType.ADDED, None, rollout("Healthy"))
    observer.on_event(EventType.MODIFIED, rollout("Healthy"), rollout("Healthy"))
    assert not observer._timings
    observer.on_event(EventType.MODIFIED, rollout("Healthy"), rollout("Progressing", 1, "StepUpgrade"))
    assert list(observer._timings) == ["u1"]


def test_a_standby_and_a_step_whose_start_was_not_seen_observe_nothing() -> None:
    registry, clock = CollectorRegistry(), Clock()
    observer = RolloutObserver(None, None, metrics(registry, [], {}), lambda: False, clock=clock)  # type: ignore[arg-type]
    observer.on_event(EventType.MODIFIED, rollout("Healthy"), rollout("Progressing", 1, "StepUpgrade"))
    other = CollectorRegistry()
    leading = RolloutObserver(None, None, metrics(other, [], {}), lambda: True, clock=clock)  # type: ignore[arg-type]
    # The leader started while step 1 was paused: that step's end is seen, its start was not.
    leading.on_event(
        EventType.MODIFIED, rollout("Progressing", 1, "StepPaused"), rollout("Progressing", 2, "StepUpgrade")
    )
    assert (
        sample(registry, "graylane_rollout_step_duration_seconds_count", namespace="ns", strategy="canary")
        is None
    )


def test_info_and_traffic_weight_series() -> None:
    registry = CollectorRegistry()
    canary = {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "20"}}}
    metrics(
        registry,
        [rollout("Progressing", 1, "StepPaused")],
        {ObjectRef("networking.k8s.io/v1", "Ingress", "web-canary"): canary},
    )
    labels = {
        "namespace": "ns",
        "name": "demo",
        "phase": "Progressing",
        "step": "1",
        "state": "StepPaused",
        "strategy": "canary",
    }
    assert registry.get_sample_value("graylane_rollout_info", labels) == 1
    assert (
        registry.get_sample_value("graylane_rollout_traffic_weight", {"namespace": "ns", "name": "demo"})
        == 20
    )
    names = {m.name for m in registry.collect()}
    assert {"graylane_rollout_info", "graylane_rollout_traffic_weight"} <= names
    assert "graylane_rollout_info" in SERIES


class FakeClient:
    def __init__(self, fresh: dict[str, Any]) -> None:
        self.fresh = fresh

    async def get_or_none(self, res: object, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.fresh


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def event(self, obj: object, kind: object, reason: str, message: str) -> None:
        self.events.append((reason, message))


async def test_an_approval_event_names_who_when_the_object_has_not_moved_on() -> None:
    old, new = rollout("Progressing", 1, "StepPaused"), rollout("Progressing", 1, "StepReady")
    entry = {
        "manager": "graylane-cli:alice",
        "subresource": "status",
        "time": "2026-01-01T00:00:00Z",
        "fieldsV1": {"f:status": {"f:canaryStatus": {"f:currentStepState": {}}}},
    }
    fresh = {**new, "metadata": {**new["metadata"], "managedFields": [entry]}}
    moved = {**fresh, "metadata": {**fresh["metadata"], "resourceVersion": "2"}}
    said = []
    for seen in (fresh, moved):
        recorder, registry = FakeRecorder(), CollectorRegistry()
        observer = RolloutObserver(FakeClient(seen), recorder, metrics(registry, [], {}), lambda: True)  # type: ignore[arg-type]
        observer.on_event(EventType.MODIFIED, old, new)
        await asyncio.gather(*observer._tasks)
        said += recorder.events
        assert (
            registry.get_sample_value(
                "graylane_rollout_user_actions_total", {"namespace": "ns", "verb": "Approved"}
            )
            == 1
        )
    assert said == [
        ("RolloutApproved", "step 1 approved by graylane-cli:alice"),
        ("RolloutApproved", "step 1 approved"),  # the controller wrote again before the read: who is unknown
    ]
