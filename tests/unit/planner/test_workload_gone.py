"""A Rollout whose workload is gone still undoes its release: Services, routes, canary Service, BatchRelease.

Each case drives the planner through a small simulated world: a router whose pending changes go away
once applied, a BatchRelease that goes once deleted, and a clock that moves past the grace period
between passes. The stored status of one pass is what the next pass reads.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, workload
from tests.unit.planner.test_traffic import FakeRouter

from graylane.api.batchrelease import BatchRelease
from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.actions import (
    ApplyChange,
    DeleteBatchRelease,
    PatchBatchRelease,
    RemoveRolloutFinalizer,
    RemoveWorkloadAnnotation,
    RolloutPlan,
    UnpauseWorkload,
)
from graylane.planner.changes import Change, Delete, ObjectKind, Patch
from graylane.planner.lifecycle import plan
from graylane.planner.observed import RolloutObserved, TrafficObserved, Workload
from graylane.planner.routing import Revisions, ServiceTask

SVC, ING = ObjectKind.SERVICE, ObjectKind.INGRESS
RESTORE = Patch(SVC, "web", {"spec": {"selector": {"pod-template-hash": None}}}, "strategic")
TO_STABLE = Delete(ING, "web-canary")
NO_CANARY_SVC = Delete(SVC, "web-canary")


@dataclasses.dataclass
class World:
    """What the planner's actions have done so far."""

    router: FakeRouter
    batch_release: BatchRelease | None
    applied: list[Any] = dataclasses.field(default_factory=list)

    def apply(self, result: RolloutPlan) -> None:
        for action in result.actions:
            self.applied.append(action)
            if isinstance(action, ApplyChange):
                self._done(action.change)
            elif isinstance(action, DeleteBatchRelease):
                self.batch_release = None

    def _done(self, change: Change) -> None:
        for task, changes in self.router.services.items():
            self.router.services[task] = [c for c in changes if c != change]
        self.router.restore = [c for c in self.router.restore if c != change]


def _world() -> World:
    router = FakeRouter(
        services={ServiceTask.RESTORE_STABLE: [RESTORE], ServiceTask.REMOVE_CANARY: [NO_CANARY_SVC]},
        restore=[TO_STABLE],
    )
    return World(router=router, batch_release=_batch_release())


def _batch_release() -> BatchRelease:
    return BatchRelease.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns", "generation": 1},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "releasePlan": {"batches": [{"canaryReplicas": 1}], "batchPartition": 0},
            },
            "status": {"phase": "Progressing"},
        }
    )


def _spec(kind: str = "Deployment", *, disabled: bool = False, style: str = "canary") -> dict[str, Any]:
    return {
        "workloadRef": {"apiVersion": "apps/v1", "kind": kind, "name": "demo"},
        "disabled": disabled,
        "strategy": {
            style: {
                "steps": [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}],
                "trafficRoutings": [{"service": "web", "ingress": {"name": "web"}}],
            }
        },
    }


def _rollout(status: dict[str, Any], *, deleting: bool = False, **spec: Any) -> Rollout:
    body = _spec(**spec)
    meta: dict[str, Any] = {
        "name": "demo",
        "namespace": "ns",
        "generation": 1,
        "uid": "u1",
        "finalizers": ["rollouts.kruise.io/rollout"],
        "annotations": {
            "rollouts.kruise.io/hash": rollout_hash(Rollout.from_obj({"spec": body}).spec.strategy)
        },
    }
    if deleting:
        meta["deletionTimestamp"] = (NOW - timedelta(seconds=60)).isoformat()
    return Rollout.from_obj({"metadata": meta, "spec": body, "status": status})


def _in_release(phase: str = "Progressing") -> dict[str, Any]:
    """Step 1 of 2, paused with 20% on the canary: the stable Service narrowed to s1."""
    cond = {
        "type": "Progressing",
        "status": "True",
        "reason": "InRolling",
        "message": "Rollout is in Progressing",
        "lastUpdateTime": (NOW - timedelta(seconds=60)).isoformat(),
    }
    canary = {
        "canaryRevision": "c1",
        "stableRevision": "s1",
        "podTemplateHash": "p1",
        "currentStepIndex": 1,
        "nextStepIndex": 2,
        "currentStepState": "StepPaused",
        "lastUpdateTime": (NOW - timedelta(seconds=60)).isoformat(),
    }
    return {"phase": phase, "observedGeneration": 1, "canaryStatus": canary, "conditions": [cond]}


def _drive(
    world: World, status: dict[str, Any], wl: Workload | None = None, *, passes: int = 12, **flags: Any
) -> list[RolloutPlan]:
    """Plan, apply and store until the finalizer goes or nothing more happens."""
    results: list[RolloutPlan] = []
    now = NOW
    for _ in range(passes):
        observed = RolloutObserved(
            rollout=_rollout(status, **flags),
            workload=wl,
            now=now,
            batch_release=world.batch_release,
            traffic=TrafficObserved(router=world.router),
        )
        result = plan(observed)
        results.append(result)
        world.apply(result)
        if result.status is not None:
            status = result.status.to_obj()
        if any(isinstance(a, RemoveRolloutFinalizer) for a in result.actions):
            break
        if not result.actions and result.status is None:
            break
        now += timedelta(seconds=10)  # past every grace period
    return results


def _order(world: World) -> list[Any]:
    kept = (ApplyChange, DeleteBatchRelease, RemoveRolloutFinalizer)
    return [a.change if isinstance(a, ApplyChange) else a for a in world.applied if isinstance(a, kept)]


def _last_status(results: list[RolloutPlan]) -> dict[str, Any]:
    stored = [r.status for r in results if r.status is not None]
    assert stored, "no status was written"
    return stored[-1].to_obj()


def test_a_deleted_rollout_whose_workload_is_gone_undoes_its_release_before_its_finalizer_goes() -> None:
    world = _world()
    _drive(world, _in_release(), deleting=True)
    assert _order(world) == [
        RESTORE,
        TO_STABLE,
        NO_CANARY_SVC,
        DeleteBatchRelease(),
        RemoveRolloutFinalizer("rollouts.kruise.io/rollout"),
    ]
    assert world.router.services == {ServiceTask.RESTORE_STABLE: [], ServiceTask.REMOVE_CANARY: []}
    assert world.router.restore == []


def test_the_first_pass_restores_the_stable_service_and_keeps_the_finalizer() -> None:
    world = _world()
    [first] = _drive(world, _in_release(), deleting=True, passes=1)
    assert [a.change for a in first.actions if isinstance(a, ApplyChange)] == [RESTORE]
    assert not any(isinstance(a, RemoveRolloutFinalizer) for a in first.actions)
    assert first.status is not None
    assert first.status.phase == "Terminating"
    assert first.status.canary_status is not None
    assert first.status.canary_status.finalising_step == "RestoreStableService"


@pytest.mark.parametrize(
    ("kind", "key"), [("Deployment", "pod-template-hash"), ("StatefulSet", "controller-revision-hash")]
)
def test_the_revision_key_comes_from_the_workload_ref(kind: str, key: str) -> None:
    world = _world()
    _drive(world, _in_release(), deleting=True, passes=1, kind=kind)
    assert (ServiceTask.RESTORE_STABLE, Revisions(key, "s1", "p1")) in world.router.calls


def test_a_disabled_rollout_whose_workload_is_gone_undoes_its_release_then_is_disabled() -> None:
    world = _world()
    results = _drive(world, _in_release(), disabled=True)
    assert _order(world) == [RESTORE, TO_STABLE, NO_CANARY_SVC, DeleteBatchRelease()]
    final = _last_status(results)
    assert (final["phase"], final["message"]) == ("Disabled", "Rollout is disabled")


def test_a_workload_deleted_mid_release_shows_not_found_at_once_and_undoes_the_release() -> None:
    world = _world()
    results = _drive(world, _in_release())
    first = results[0].status
    assert first is not None
    assert (first.phase, first.message) == ("Initial", "Workload Not Found")
    assert _order(world) == [RESTORE, TO_STABLE, NO_CANARY_SVC, DeleteBatchRelease()]
    assert _last_status(results) == {
        "observedGeneration": 1,
        "phase": "Initial",
        "message": "Workload Not Found",
        "currentStepIndex": 0,
        "currentStepState": "",
    }


def test_a_workload_deleted_after_a_completed_release_is_reset_without_writing_anything() -> None:
    """Nothing left to undo (routes already on stable, no BatchRelease): Kruise's reset, once the
    tasks have each found nothing to change."""
    status = _in_release("Healthy")
    status["canaryStatus"].update(currentStepIndex=2, currentStepState="Completed", finalisingStep="")
    world = World(router=FakeRouter(), batch_release=None)
    results = _drive(world, status)
    assert world.applied == []
    assert _last_status(results)["phase"] == "Initial"
    assert "canaryStatus" not in _last_status(results)


def test_a_workload_recreated_during_the_undo_is_left_alone_until_the_undo_is_done() -> None:
    world = _world()
    [first] = _drive(world, _in_release(), passes=1)
    assert first.status is not None
    # A new Deployment of the same name, already held by a release of its own.
    back = workload(annotations={"rollouts.kruise.io/in-progressing": "{}"}, paused=True)
    results = _drive(world, first.status.to_obj(), back)
    touched = (RemoveWorkloadAnnotation, UnpauseWorkload, PatchBatchRelease)
    assert not [a for a in world.applied if isinstance(a, touched)]
    assert _order(world) == [RESTORE, TO_STABLE, NO_CANARY_SVC, DeleteBatchRelease()]
    stored = [r.status for r in results if r.status is not None]
    healthy = next(i for i, st in enumerate(stored) if st.phase == "Healthy")
    # Initial until the undo is done and the status reset, then the new workload is found.
    assert [st.phase for st in stored[:healthy]] == ["Initial"] * healthy
    assert stored[healthy - 1].canary_status is None


def test_a_rollout_disabled_while_undoing_for_a_missing_workload_finishes_the_undo() -> None:
    world = _world()
    [first] = _drive(world, _in_release(), passes=1)
    assert first.status is not None
    assert first.status.phase == "Initial"
    results = _drive(world, first.status.to_obj(), disabled=True)
    assert results[0].status is not None
    assert (results[0].status.phase, results[0].status.message) == (
        "Disabling",
        "Disabling rollout, release resources",
    )
    assert _order(world) == [RESTORE, TO_STABLE, NO_CANARY_SVC, DeleteBatchRelease()]
    assert _last_status(results)["phase"] == "Disabled"


def test_a_blue_green_rollout_deleted_after_its_workload_undoes_in_its_hand_back_order() -> None:
    status = _in_release()
    sub = status.pop("canaryStatus")
    sub["updatedRevision"] = sub.pop("canaryRevision")
    status["blueGreenStatus"] = sub
    world = _world()
    _drive(world, status, deleting=True, style="blueGreen")
    assert _order(world) == [
        RESTORE,
        TO_STABLE,
        NO_CANARY_SVC,
        DeleteBatchRelease(),
        RemoveRolloutFinalizer("rollouts.kruise.io/rollout"),
    ]
