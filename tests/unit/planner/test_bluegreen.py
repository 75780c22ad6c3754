"""The blue-green Rollout planner: its sub-status, release plan, refusal and finalisation orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, workload

from graylane.api.batchrelease import BatchRelease
from graylane.api.hashing import release_plan_hash, rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.actions import EnsureBatchRelease, PatchBatchRelease, RecordEvent
from graylane.planner.bluegreen import MSG_CONTINUOUS_REFUSED
from graylane.planner.lifecycle import plan
from graylane.planner.observed import RolloutObserved

STEPS: list[dict[str, Any]] = [
    {"replicas": "50%", "traffic": "0%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]


def _rollout(status: dict[str, Any] | None = None, **strategy: Any) -> Rollout:
    body = {"steps": STEPS, **strategy}
    obj = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default", "generation": 2, "uid": "u1"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"blueGreen": body},
        },
        "status": status or {},
    }
    ro = Rollout.from_obj(obj)
    ro.metadata["finalizers"] = ["rollouts.kruise.io/rollout"]
    ro.metadata["annotations"] = {"rollouts.kruise.io/hash": rollout_hash(ro.spec.strategy)}
    return ro


def _progressing(state: str, index: int = 1, reason: str = "InRolling", **sub: Any) -> dict[str, Any]:
    blue_green = {
        "updatedRevision": "c1",
        "stableRevision": "s1",
        "podTemplateHash": "p1",
        "rolloutHash": rollout_hash(_rollout().spec.strategy),
        "currentStepIndex": index,
        "nextStepIndex": index + 1 if index < len(STEPS) else -1,
        "currentStepState": state,
        "lastUpdateTime": (NOW - timedelta(seconds=10)).isoformat(),
        **sub,
    }
    cond = {
        "type": "Progressing",
        "status": "True",
        "reason": reason,
        "message": "Rollout is in Progressing",
        "lastUpdateTime": (NOW - timedelta(seconds=60)).isoformat(),
    }
    return {"phase": "Progressing", "blueGreenStatus": blue_green, "conditions": [cond]}


def _br(
    partition: int | None, *, batch: int = 0, state: str = "Ready", phase: str = "Progressing"
) -> BatchRelease:
    br = BatchRelease.from_obj(
        {
            "metadata": {"name": "demo", "generation": 1},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "releasePlan": {
                    "batches": [{"canaryReplicas": "50%"}, {"canaryReplicas": "100%"}],
                    "batchPartition": partition,
                    "rolloutID": "c1",
                    "rollingStyle": "BlueGreen",
                },
            },
        }
    )
    br.status.observed_generation = 1
    br.status.observed_release_plan_hash = release_plan_hash(br.spec.release_plan)
    br.status.canary_status.batch_state = state
    br.status.canary_status.current_batch = batch
    br.status.canary_status.updated_replicas = 3
    br.status.canary_status.updated_ready_replicas = 2
    br.status.phase = phase
    return br


def _plan(status: dict[str, Any], br: BatchRelease | None = None, *, held: bool = True, **wl: Any) -> Any:
    annotations = {"rollouts.kruise.io/in-progressing": "{}"} if held else {}
    w = workload(in_rollout_progressing=held, annotations=annotations, **wl)
    return plan(RolloutObserved(rollout=_rollout(status), workload=w, now=NOW, batch_release=br))


def test_the_release_starts_with_a_blue_green_status_and_no_canary_status() -> None:
    cond = {
        "type": "Progressing",
        "status": "True",
        "reason": "Initializing",
        "message": "Rollout is in Progressing",
        "lastUpdateTime": (NOW - timedelta(seconds=60)).isoformat(),
    }
    result = _plan({"phase": "Progressing", "conditions": [cond]})
    stored = result.status.to_obj()
    assert "canaryStatus" not in stored
    sub = stored["blueGreenStatus"]
    assert (sub["updatedRevision"], sub["stableRevision"]) == ("c1", "s1")
    assert (sub["currentStepIndex"], sub["currentStepState"]) == (1, "StepUpgrade")
    assert (stored["currentStepIndex"], stored["currentStepState"]) == (1, "StepUpgrade")


def test_the_batch_release_is_asked_for_blue_green_batches() -> None:
    result = _plan(_progressing("BeforeStepUpgrade"))
    [ensure] = [a for a in result.actions if isinstance(a, EnsureBatchRelease)]
    release = ensure.spec["releasePlan"]
    assert release["rollingStyle"] == "BlueGreen"
    assert [b["canaryReplicas"] for b in release["batches"]] == ["50%", "100%"]
    assert release["batchPartition"] == 0
    assert "patchPodTemplateMetadata" not in release
    assert not release.get("enableExtraWorkloadForCanary")


def test_the_batch_progress_is_mirrored_as_updated_replicas() -> None:
    result = _plan(_progressing("StepUpgrade"), _br(0, state="Upgrading"))
    sub = result.status.blue_green_status
    assert (sub.updated_replicas, sub.updated_ready_replicas) == (3, 2)
    assert sub.message == "BatchRelease is at state Upgrading, rollout-id , step 1"


def test_a_ready_batch_routes_then_pauses_for_approval() -> None:
    result = _plan(_progressing("StepUpgrade"), _br(0))
    sub = result.status.blue_green_status
    assert sub.current_step_state == "StepPaused"
    assert (
        result.status.message
        == "Rollout is in step(1/2), and you need manually confirm to enter the next step"
    )


def test_the_last_100_percent_step_pauses_too() -> None:
    """Unlike canary, blue-green waits at its last step: every request is on the new pods, the old
    pods are still up, and the user decides."""
    result = _plan(_progressing("StepUpgrade", index=2), _br(1, batch=1))
    assert result.status.blue_green_status.current_step_state == "StepPaused"


def test_a_newer_revision_mid_release_is_refused_with_kruises_message() -> None:
    result = _plan(_progressing("StepPaused"), _br(0), canary_revision="c2")
    assert result.status.message == MSG_CONTINUOUS_REFUSED
    assert result.status.blue_green_status.current_step_state == "StepPaused"
    assert [type(a) for a in result.actions] == [RecordEvent]
    again = _plan(result.status.to_obj(), _br(0), canary_revision="c2")
    assert again.actions == ()  # the Event once, not on every pass
    assert again.status.message == MSG_CONTINUOUS_REFUSED


def test_rolling_back_to_the_stable_revision_cancels() -> None:
    result = _plan(_progressing("StepPaused"), _br(0), canary_revision="s1", is_in_rollback=True)
    cond = result.status.conditions[0]
    assert cond.reason == "Cancelling"
    assert result.status.blue_green_status.updated_revision == "s1"


@pytest.mark.parametrize(
    ("reason", "state", "first"),
    [
        ("Finalising", "Completed", "FinalisingStepRouteTrafficToNew"),
        ("Cancelling", "StepPaused", "FinalisingStepRouteTrafficToStable"),
    ],
)
def test_finalisation_starts_with_the_reasons_first_task(reason: str, state: str, first: str) -> None:
    traffic = [{"service": "demo", "ingress": {"name": "demo"}}]
    r = _rollout(_progressing(state, index=2, reason=reason), trafficRoutings=traffic)
    w = workload(annotations={}, in_rollout_progressing=False)
    result = plan(RolloutObserved(rollout=r, workload=w, now=NOW, batch_release=_br(1, batch=1)))
    # No traffic objects were observed: the first task is blocked where it starts, and says so.
    assert result.status.blue_green_status.finalising_step == first
    assert result.status.message.startswith("traffic routing is blocked")


def test_disabling_restores_the_stable_service_first() -> None:
    traffic = [{"service": "demo", "ingress": {"name": "demo"}}]
    status = _progressing("StepPaused")
    status["phase"] = "Disabling"
    r = _rollout(status, trafficRoutings=traffic)
    r.spec.disabled = True
    w = workload(annotations={}, in_rollout_progressing=False)
    result = plan(RolloutObserved(rollout=r, workload=w, now=NOW, batch_release=_br(0)))
    assert result.status.blue_green_status.finalising_step == "RestoreStableService"


def test_without_traffic_success_resumes_the_workload_then_releases_it() -> None:
    status = _progressing("Completed", index=2, reason="Finalising")
    first = _plan(status, _br(1, batch=1))
    assert first.status.blue_green_status.finalising_step == "ResumeWorkload"
    assert (
        PatchBatchRelease(
            {"spec": {"releasePlan": {"batchPartition": None, "finalizingPolicy": "WaitResume"}}}
        )
        in first.actions
    )
    done = _br(None, batch=1, phase="Completed")
    second = _plan(first.status.to_obj(), done, held=False)
    assert second.status.blue_green_status.finalising_step == "ReleaseWorkloadControl"


def test_a_healthy_first_deploy_gets_a_completed_blue_green_status() -> None:
    result = _plan({"phase": "Healthy"}, held=False)
    stored = result.status.to_obj()
    assert "canaryStatus" not in stored
    assert stored["blueGreenStatus"]["currentStepState"] == "Completed"
    assert stored["blueGreenStatus"]["updatedRevision"] == "c1"
    assert stored["message"] == "workload deployment is completed"
