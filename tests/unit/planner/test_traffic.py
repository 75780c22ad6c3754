"""Traffic tasks in the step machine and finalisation: grace waits, done-after-a-quiet-pass, #113, errors."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, workload

from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.actions import ApplyChange, EnsureBatchRelease, RecordEvent, RolloutPlan
from graylane.planner.changes import Change, Delete, ObjectKind, Patch
from graylane.planner.lifecycle import plan
from graylane.planner.observed import RolloutObserved, TrafficObserved
from graylane.planner.routing import Revisions, RouteIntent, RoutingError, ServiceTask

SVC, ING = ObjectKind.SERVICE, ObjectKind.INGRESS
STABLE_PATCH = Patch(SVC, "web", {"spec": {"selector": {"pod-template-hash": "s1"}}}, "strategic")
CANARY_WEIGHT = Patch(ING, "web-canary", {"metadata": {"annotations": {"w": "20"}}})
STEPS: list[dict[str, Any]] = [
    {"replicas": 1, "traffic": "20%", "pause": {}},
    {"replicas": 2, "pause": {}},
    {"replicas": "100%"},
]


@dataclasses.dataclass
class FakeRouter:
    """Answers from tables; records what the planner asked."""

    services: dict[ServiceTask, list[Change]] = dataclasses.field(default_factory=dict)
    routes: list[Change] = dataclasses.field(default_factory=list)
    restore: list[Change] = dataclasses.field(default_factory=list)
    error: str = ""
    calls: list[Any] = dataclasses.field(default_factory=list)

    def verify(self, observed: TrafficObserved) -> None:
        if self.error:
            raise RoutingError(self.error)

    def service_changes(
        self, task: ServiceTask, revisions: Revisions, observed: TrafficObserved
    ) -> list[Change]:
        self.calls.append((task, revisions))
        return list(self.services.get(task, []))

    def ensure_routes(self, route: RouteIntent, observed: TrafficObserved) -> list[Change]:
        self.calls.append(route)
        if self.error:
            raise RoutingError(self.error)
        return list(self.routes)

    def finalise_routes(self, observed: TrafficObserved) -> list[Change]:
        self.calls.append("finalise")
        return list(self.restore)


def _rollout(status: dict[str, Any], *, grace: int = 3) -> Rollout:
    steps = STEPS
    spec = {
        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
        "strategy": {
            "canary": {
                "enableExtraWorkloadForCanary": True,
                "steps": steps,
                "trafficRoutings": [
                    {"service": "web", "ingress": {"name": "web"}, "gracePeriodSeconds": grace}
                ],
            }
        },
    }
    r = Rollout.from_obj({"metadata": {"name": "demo", "namespace": "ns", "generation": 1}, "spec": spec})
    meta = {
        "name": "demo",
        "namespace": "ns",
        "generation": 1,
        "uid": "u1",
        "finalizers": ["rollouts.kruise.io/rollout"],
        "annotations": {"rollouts.kruise.io/hash": rollout_hash(r.spec.strategy)},
    }
    return Rollout.from_obj({"metadata": meta, "spec": spec, "status": status})


def _status(
    state: str, *, index: int = 1, ago: float = 10, reason: str = "InRolling", **sub: Any
) -> dict[str, Any]:
    canary = {
        "canaryRevision": "c1",
        "stableRevision": "s1",
        "podTemplateHash": "p1",
        "currentStepIndex": index,
        "nextStepIndex": index + 1 if index < len(STEPS) else -1,
        "currentStepState": state,
        "lastUpdateTime": (NOW - timedelta(seconds=ago)).isoformat(),
        **sub,
    }
    cond = {
        "type": "Progressing",
        "status": "True",
        "reason": reason,
        "message": "Rollout is in Progressing",
        "lastUpdateTime": (NOW - timedelta(seconds=60)).isoformat(),
    }
    return {"phase": "Progressing", "canaryStatus": canary, "conditions": [cond]}


def _plan(status: dict[str, Any], router: FakeRouter, *, grace: int = 3, **overrides: Any) -> RolloutPlan:
    r = _rollout(status, grace=grace)
    r.status.canary_status.rollout_hash = rollout_hash(r.spec.strategy)  # type: ignore[union-attr]
    fields = {"in_rollout_progressing": True, "annotations": {"rollouts.kruise.io/in-progressing": "{}"}}
    wl = workload(**{**fields, **overrides})
    return plan(RolloutObserved(rollout=r, workload=wl, now=NOW, traffic=TrafficObserved(router=router)))


def _applied(result: RolloutPlan) -> list[Change]:
    return [a.change for a in result.actions if isinstance(a, ApplyChange)]


def _state(result: RolloutPlan) -> tuple[int, str]:
    sub = result.status.canary_status  # type: ignore[union-attr]
    return sub.current_step_index, sub.current_step_state


def test_routing_waits_the_grace_period_after_the_upgrade() -> None:
    router = FakeRouter()
    result = _plan(_status("StepTrafficRouting", ago=1), router)
    assert router.calls == []
    assert _state(result) == (1, "StepTrafficRouting")
    assert result.requeue_after == pytest.approx(2.0)


def test_services_first_then_a_grace_wait() -> None:
    router = FakeRouter(services={ServiceTask.ENSURE: [STABLE_PATCH]}, routes=[CANARY_WEIGHT])
    result = _plan(_status("StepTrafficRouting"), router)
    assert _applied(result) == [STABLE_PATCH]
    assert result.status.canary_status.last_update_time == NOW  # type: ignore[union-attr]
    assert result.requeue_after == 3
    assert router.calls == [(ServiceTask.ENSURE, Revisions("pod-template-hash", "s1", "p1"))]


def test_then_routes_with_the_step_weight() -> None:
    router = FakeRouter(routes=[CANARY_WEIGHT])
    result = _plan(_status("StepTrafficRouting"), router)
    assert _applied(result) == [CANARY_WEIGHT]
    assert router.calls[-1] == RouteIntent(weight=20)
    assert _state(result) == (1, "StepTrafficRouting")


def test_done_after_a_pass_with_nothing_to_change() -> None:
    result = _plan(_status("StepTrafficRouting"), FakeRouter())
    assert _applied(result) == []
    assert _state(result) == (1, "StepPaused")


def test_issue_113_waits_for_both_revisions() -> None:
    router = FakeRouter(services={ServiceTask.ENSURE: [STABLE_PATCH]})
    result = _plan(_status("StepTrafficRouting", podTemplateHash=""), router, pod_template_hash="")
    assert router.calls == []
    assert _applied(result) == []
    assert result.requeue_after == 3


@pytest.mark.parametrize(
    ("grace", "ago", "done"), [(0, 2, False), (0, 4, True), (-1, 2, False), (7, 5, False), (7, 8, True)]
)
def test_route_grace_below_one_means_three(grace: int, ago: float, done: bool) -> None:
    result = _plan(_status("StepTrafficRouting", ago=ago), FakeRouter(), grace=grace)
    assert (_state(result)[1] == "StepPaused") is done


def test_routing_error_goes_to_status_and_one_warning() -> None:
    router = FakeRouter(error="Ingress web not found")
    result = _plan(_status("StepTrafficRouting"), router)
    message = "traffic routing is blocked: Ingress web not found"
    assert result.status.message == message  # type: ignore[union-attr]
    assert [a for a in result.actions if isinstance(a, RecordEvent)] == [
        RecordEvent("Warning", "TrafficRoutingFailed", message)
    ]
    again = _status("StepTrafficRouting")
    again["message"] = message
    assert not [a for a in _plan(again, router).actions if isinstance(a, RecordEvent)]


def test_initializing_waits_for_the_traffic_objects() -> None:
    router = FakeRouter(error="Ingress web not found")
    status = _status("", reason="Initializing")
    result = _plan(status, router)
    cond = result.status.conditions[0]  # type: ignore[union-attr]
    assert cond.reason == "Initializing"
    assert result.status.message == "traffic routing is not ready: Ingress web not found"  # type: ignore[union-attr]
    assert RecordEvent("Warning", "TrafficRoutingNotReady", result.status.message) in result.actions  # type: ignore[union-attr]
    router.error = ""
    assert _plan(status, router).status.conditions[0].reason == "InRolling"  # type: ignore[union-attr]


def test_step_one_narrows_the_stable_service_before_the_upgrade() -> None:
    router = FakeRouter(services={ServiceTask.PATCH_STABLE: [STABLE_PATCH]})
    result = _plan(_status("BeforeStepUpgrade"), router)
    assert _applied(result) == [STABLE_PATCH]
    assert not [a for a in result.actions if isinstance(a, EnsureBatchRelease)]
    router.services = {}
    result = _plan(_status("BeforeStepUpgrade"), router)
    assert [a for a in result.actions if isinstance(a, EnsureBatchRelease)]


def test_a_step_without_traffic_first_undoes_the_routing() -> None:
    restore = Patch(SVC, "web", {"spec": {"selector": {"pod-template-hash": None}}}, "strategic")
    router = FakeRouter(services={ServiceTask.RESTORE_STABLE: [restore]})
    result = _plan(_status("BeforeStepUpgrade", index=2), router)
    assert _applied(result) == [restore]
    assert _state(result) == (2, "BeforeStepUpgrade")
    router = FakeRouter(restore=[Delete(ING, "web-canary")])
    assert _applied(_plan(_status("BeforeStepUpgrade", index=2), router)) == [Delete(ING, "web-canary")]
    router = FakeRouter(services={ServiceTask.REMOVE_CANARY: [Delete(SVC, "web-canary")]})
    assert _applied(_plan(_status("BeforeStepUpgrade", index=2), router)) == [Delete(SVC, "web-canary")]


def _finalising(step: str, ago: float = 10) -> dict[str, Any]:
    return _status("Completed", index=3, ago=ago, reason="Finalising", finalisingStep=step)


def test_finalising_runs_the_traffic_tasks_in_order_with_grace() -> None:
    restore = Patch(SVC, "web", {"spec": {"selector": {"pod-template-hash": None}}}, "strategic")
    router = FakeRouter(services={ServiceTask.RESTORE_STABLE: [restore]})
    result = _plan(_finalising("RestoreStableService"), router)
    assert _applied(result) == [restore]
    assert result.status.canary_status.finalising_step == "RestoreStableService"  # type: ignore[union-attr]
    # Nothing left to restore, but the change was 1 s ago: still within the grace period.
    result = _plan(_finalising("RestoreStableService", ago=1), FakeRouter())
    assert result.status.canary_status.finalising_step == "RestoreStableService"  # type: ignore[union-attr]
    assert result.requeue_after == pytest.approx(2.0)


def test_finalising_grace_zero_is_honoured() -> None:
    router = FakeRouter(restore=[Delete(ING, "web-canary")])
    result = _plan(_finalising("FinalisingStepRouteTrafficToStable", ago=0), router, grace=0)
    assert _applied(result) == [Delete(ING, "web-canary")]
    assert result.requeue_after == 0
    result = _plan(_finalising("FinalisingStepRouteTrafficToStable", ago=0), FakeRouter(), grace=0)
    assert result.status.canary_status.finalising_step != "FinalisingStepRouteTrafficToStable"  # type: ignore[union-attr]


def test_without_traffic_routings_every_task_is_done_at_once() -> None:
    r = _rollout(_status("StepTrafficRouting"))
    raw = r.to_obj()
    del raw["spec"]["strategy"]["canary"]["trafficRoutings"]
    raw["metadata"]["annotations"]["rollouts.kruise.io/hash"] = rollout_hash(
        Rollout.from_obj(raw).spec.strategy
    )
    bare = Rollout.from_obj(raw)
    bare.status.canary_status.rollout_hash = rollout_hash(bare.spec.strategy)  # type: ignore[union-attr]
    result = plan(RolloutObserved(rollout=bare, workload=workload(in_rollout_progressing=True), now=NOW))
    assert _state(result) == (1, "StepPaused")
