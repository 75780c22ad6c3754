"""The canary step machine and the finalisation sequences, driven through lifecycle.plan()."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, rollout, workload

from graylane.api.batchrelease import BatchRelease
from graylane.api.hashing import release_plan_hash, rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.actions import (
    DeleteBatchRelease,
    EnsureBatchRelease,
    PatchBatchRelease,
    RecordEvent,
    RemoveWorkloadAnnotation,
)
from graylane.planner.canary import rolling_style
from graylane.planner.lifecycle import plan
from graylane.planner.observed import RolloutObserved
from graylane.planner.polling import safety_poll

STEPS: list[dict[str, Any]] = [
    {"replicas": 1, "pause": {}},
    {"replicas": 2, "pause": {"duration": 30}},
    {"replicas": "100%"},
]


def _progressing(state: str, index: int = 1, reason: str = "InRolling", **sub: Any) -> dict[str, Any]:
    r = rollout(steps=STEPS)
    canary = {
        "canaryRevision": "c1",
        "stableRevision": "s1",
        "rolloutHash": rollout_hash(r.spec.strategy),
        "currentStepIndex": index,
        "nextStepIndex": index + 1 if index < 3 else -1,
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
    return {"phase": "Progressing", "canaryStatus": canary, "conditions": [cond]}


def _meta() -> dict[str, Any]:
    r = rollout(steps=STEPS)
    return {
        "finalizers": ["rollouts.kruise.io/rollout"],
        "annotations": {"rollouts.kruise.io/hash": rollout_hash(r.spec.strategy)},
        "uid": "u1",
    }


def _br(
    partition: int | None,
    *,
    state: str = "Ready",
    batch: int = 0,
    phase: str = "Progressing",
    policy: str = "",
) -> BatchRelease:
    plan_obj = {
        "batches": [{"canaryReplicas": 1}, {"canaryReplicas": 2}, {"canaryReplicas": "100%"}],
        "batchPartition": partition,
        # The default rollout-id: the canary revision, as the workload carries no rollout-id label.
        "rolloutID": "c1",
        "rollingStyle": "Partition",
        "enableExtraWorkloadForCanary": False,
    }
    if policy:
        plan_obj["finalizingPolicy"] = policy
    br = BatchRelease.from_obj(
        {
            "metadata": {"name": "demo", "generation": 1},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "releasePlan": plan_obj,
            },
        }
    )
    br.status.observed_generation = 1
    br.status.observed_release_plan_hash = release_plan_hash(br.spec.release_plan)
    br.status.canary_status.batch_state = state
    br.status.canary_status.current_batch = batch
    br.status.canary_status.updated_replicas = batch + 1
    br.status.phase = phase
    return br


def _plan(status: dict[str, Any], br: BatchRelease | None = None, *, held: bool = True, **wl: Any) -> Any:
    """`held`: the workload carries the webhook's in-progressing annotation (finalising removes it)."""
    r = rollout(steps=STEPS, status=status, metadata=_meta())
    annotations = {"rollouts.kruise.io/in-progressing": "{}"} if held else {}
    w = workload(in_rollout_progressing=held, annotations=annotations, **wl)
    return plan(RolloutObserved(rollout=r, workload=w, now=NOW, batch_release=br))


def _sub(result: Any) -> Any:
    return result.status.canary_status


def test_before_upgrade_creates_the_batch_release_for_step_one() -> None:
    result = _plan(_progressing("BeforeStepUpgrade"))
    [ensure] = [a for a in result.actions if isinstance(a, EnsureBatchRelease)]
    assert ensure.spec["releasePlan"]["batchPartition"] == 0
    assert not ensure.exists  # the executor creates it straight away
    assert [b["canaryReplicas"] for b in ensure.spec["releasePlan"]["batches"]] == [1, 2, "100%"]
    assert _sub(result).current_step_state == "StepUpgrade"
    assert result.status.message == "Rollout is in step(1/3), and upgrade workload to new version"


def test_next_step_replaces_the_spec_of_the_batch_release_it_has() -> None:
    result = _plan(_progressing("StepUpgrade", index=2), _br(0, state="Ready"))
    [ensure] = [a for a in result.actions if isinstance(a, EnsureBatchRelease)]
    assert ensure.spec["releasePlan"]["batchPartition"] == 1
    assert ensure.exists  # the executor patches it first


def test_upgrade_waits_while_the_batch_is_not_ready() -> None:
    result = _plan(_progressing("StepUpgrade"), _br(0, state="Upgrading"))
    assert _sub(result).current_step_state == "StepUpgrade"
    assert not any(isinstance(a, EnsureBatchRelease) for a in result.actions)
    assert _sub(result).message == "BatchRelease is at state Upgrading, rollout-id , step 1"


def test_ready_batch_runs_through_to_a_manual_pause() -> None:
    result = _plan(_progressing("StepUpgrade"), _br(0))
    assert _sub(result).current_step_state == "StepPaused"
    assert (
        result.status.message
        == "Rollout is in step(1/3), and you need manually confirm to enter the next step"
    )
    assert (
        RecordEvent("Normal", "Progressing", "upgrade step(1) canary pods with new versions done")
        in result.actions
    )
    assert (result.status.current_step_index, result.status.current_step_state) == (1, "StepPaused")


def test_approval_moves_to_the_next_step_and_updates_the_batch() -> None:
    result = _plan(_progressing("StepReady"), _br(0))
    sub = _sub(result)
    assert (sub.current_step_index, sub.next_step_index, sub.current_step_state) == (2, 3, "StepUpgrade")
    [ensure] = [a for a in result.actions if isinstance(a, EnsureBatchRelease)]
    assert ensure.spec["releasePlan"]["batchPartition"] == 1


@pytest.mark.parametrize(("elapsed", "state"), [(10, "StepPaused"), (31, "StepUpgrade")])
def test_timed_pause(elapsed: int, state: str) -> None:
    status = _progressing(
        "StepPaused", index=2, lastUpdateTime=(NOW - timedelta(seconds=elapsed)).isoformat()
    )
    result = _plan(status, _br(1, batch=1))
    assert _sub(result).current_step_state == state
    if state == "StepPaused":
        assert result.requeue_after == pytest.approx(20.0)
        assert "wait duration(30 seconds)" in result.status.message


def test_last_step_at_100_percent_completes_without_pausing_then_finalises() -> None:
    result = _plan(_progressing("StepUpgrade", index=3), _br(2, batch=2))
    assert _sub(result).current_step_state == "Completed"
    again = _plan(result.status.to_obj(), _br(2, batch=2))
    cond = again.status.conditions[0]
    assert (cond.reason, cond.message) == (
        "Finalising",
        "Rollout has been completed and some closing work is being done",
    )


def test_success_finalisation_resumes_then_deletes_the_batch_release() -> None:
    status = _progressing("Completed", index=3, reason="Finalising")
    first = _plan(status, _br(2, batch=2))
    assert RemoveWorkloadAnnotation("rollouts.kruise.io/in-progressing") in first.actions
    assert (
        PatchBatchRelease(
            {"spec": {"releasePlan": {"batchPartition": None, "finalizingPolicy": "WaitResume"}}}
        )
        in first.actions
    )
    assert _sub(first).finalising_step == "ResumeWorkload"

    done_br = _br(None, phase="Completed", policy="WaitResume")
    second = _plan(first.status.to_obj(), done_br)
    assert DeleteBatchRelease() in second.actions
    assert _sub(second).finalising_step == "ReleaseWorkloadControl"

    third = _plan(second.status.to_obj(), None, held=False)  # the annotation's removal is seen by now
    conds = {c.type: c for c in third.status.conditions}
    assert (conds["Progressing"].reason, conds["Progressing"].status) == ("Completed", "False")
    assert conds["Succeeded"].status == "True"
    assert third.status.message == "Rollout progressing has been completed"
    fourth = _plan(third.status.to_obj(), None, held=False)
    assert fourth.status.phase == "Healthy"


def test_rollback_cancels_with_immediate_finalising() -> None:
    result = _plan(_progressing("StepPaused"), _br(0), canary_revision="s1rev", is_in_rollback=True)
    cond = result.status.conditions[0]
    assert (cond.reason, cond.message) == (
        "Cancelling",
        "The workload has been rolled back and the rollout process will be cancelled",
    )
    nxt = _plan(result.status.to_obj(), _br(0), canary_revision="s1rev", is_in_rollback=True)
    assert (
        PatchBatchRelease(
            {"spec": {"releasePlan": {"batchPartition": None, "finalizingPolicy": "Immediate"}}}
        )
        in nxt.actions
    )


def test_continuous_release_deletes_the_batch_release_then_restarts() -> None:
    first = _plan(_progressing("StepPaused"), _br(0), canary_revision="c3")
    assert DeleteBatchRelease() in first.actions
    second = _plan(first.status.to_obj(), None, canary_revision="c3")
    assert second.status.conditions[0].reason == "Initializing"
    assert second.status.message == "Workload is continuous release"


def test_initializing_waits_three_seconds_then_rolls() -> None:
    status = _progressing("StepPaused", reason="Initializing")
    status["conditions"][0]["lastUpdateTime"] = (NOW - timedelta(seconds=1)).isoformat()
    result = _plan(status)
    assert result.requeue_after == pytest.approx(2.0)
    assert _sub(result).current_step_state == "BeforeStepUpgrade"
    status["conditions"][0]["lastUpdateTime"] = (NOW - timedelta(seconds=5)).isoformat()
    assert _plan(status).status.conditions[0].reason == "InRolling"


def test_paused_strategy_pauses_the_progression() -> None:
    r_status = _progressing("StepUpgrade")
    r = rollout(steps=STEPS, status=r_status, metadata=_meta())
    r.spec.strategy.paused = True
    result = plan(RolloutObserved(rollout=r, workload=workload(in_rollout_progressing=True), now=NOW))
    assert result.status is not None
    assert result.status.conditions[0].reason == "Paused"
    assert result.status.message == "Rollout has been paused, you can resume it by kube-cli"


@pytest.mark.parametrize(
    ("current", "next_index", "want_state"),
    [
        (1, 3, "BeforeStepUpgrade"),  # forward to a step with other replicas: upgrade again
        (2, 1, "BeforeStepUpgrade"),  # back to step 1 (1 replica vs 2)
    ],
)
def test_step_jump_by_next_step_index(current: int, next_index: int, want_state: str) -> None:
    status = _progressing("StepPaused", index=current, nextStepIndex=next_index)
    result = _plan(status, _br(current - 1, batch=current - 1))
    sub = _sub(result)
    assert (sub.current_step_index, sub.current_step_state) == (next_index, want_state)
    assert sub.next_step_index == (next_index + 1 if next_index < 3 else -1)


def test_jump_to_a_step_with_the_same_replicas_only_reroutes() -> None:
    steps: list[dict[str, Any]] = [
        {"replicas": 1, "traffic": "10%", "pause": {}},
        {"replicas": 1, "traffic": "30%", "pause": {}},
        {"replicas": 1, "traffic": "50%", "pause": {}},
        {"replicas": "100%"},
    ]
    r = rollout(steps=steps)
    status = _progressing("StepPaused", index=1, nextStepIndex=3, rolloutHash=rollout_hash(r.spec.strategy))
    meta = {**_meta(), "annotations": {"rollouts.kruise.io/hash": rollout_hash(r.spec.strategy)}}
    obs = RolloutObserved(
        rollout=rollout(steps=steps, status=status, metadata=meta),
        workload=workload(in_rollout_progressing=True),
        now=NOW,
    )
    sub = _sub(plan(obs))
    assert (sub.current_step_index, sub.current_step_state) == (3, "StepTrafficRouting")


def test_plan_change_lands_on_the_first_step_keeping_upgraded_pods() -> None:
    status = _progressing("StepPaused", index=2, rolloutHash="old")
    result = _plan(status, _br(1, batch=1))
    sub = _sub(result)
    assert sub.rollout_hash == rollout_hash(rollout(steps=STEPS).spec.strategy)
    # 2 pods upgraded at batch 1; step 2 (2 replicas) is the first that keeps them, and it is current.
    assert sub.current_step_index == 2


def _after_edit(edited: list[dict[str, Any]]) -> Any:
    """Paused at step 2 with 2 pods deployed (batch 1), then the steps are edited."""
    r = rollout(steps=edited)
    meta = {**_meta(), "annotations": {"rollouts.kruise.io/hash": rollout_hash(r.spec.strategy)}}
    status = _progressing("StepPaused", index=2, rolloutHash="old")
    obs = RolloutObserved(
        rollout=rollout(steps=edited, status=status, metadata=meta),
        workload=workload(in_rollout_progressing=True),
        now=NOW,
        batch_release=_br(1, batch=1),
    )
    return _sub(plan(obs))


def test_plan_change_raising_the_current_step_upgrades_again() -> None:
    """Kruise would only re-route here and leave 2 pods; graylane scales to the edited 3."""
    sub = _after_edit([{"replicas": 1, "pause": {}}, {"replicas": 3, "pause": {}}, {"replicas": "100%"}])
    assert (sub.current_step_index, sub.current_step_state) == (2, "BeforeStepUpgrade")


def test_plan_change_below_the_deployed_pods_moves_to_a_later_step() -> None:
    sub = _after_edit([{"replicas": 1, "pause": {}}, {"replicas": 1, "pause": {}}, {"replicas": "100%"}])
    # 2 pods are deployed; the first step keeping them is step 3, which is already nextStepIndex.
    assert (sub.current_step_index, sub.next_step_index, sub.current_step_state) == (2, 3, "StepReady")


# -- what wakes a wait: events, not polling ---------------------------------------------------------

SAFETY = safety_poll("u1")  # the only time-based wake-up of a Rollout waiting on another object


def test_waiting_for_the_batch_release_is_woken_by_its_status_event() -> None:
    result = _plan(_progressing("StepUpgrade"), _br(0, state="Verifying"))
    assert _sub(result).current_step_state == "StepUpgrade"
    assert result.requeue_after == SAFETY  # no 3 s re-check: the BatchRelease status event wakes it


def test_finalising_waiting_for_the_batch_release_is_woken_by_its_events() -> None:
    status = _progressing("Completed", index=3, reason="Finalising")
    status["canaryStatus"]["finalisingStep"] = "ResumeWorkload"
    asked = _br(None, phase="Finalizing", policy="WaitResume")
    result = _plan(status, asked)
    assert _sub(result).finalising_step == "ResumeWorkload"
    assert result.requeue_after == SAFETY


def test_continuous_release_waits_for_the_deletion_event() -> None:
    first = _plan(_progressing("StepPaused"), _br(0), canary_revision="c3")
    assert DeleteBatchRelease() in first.actions
    assert first.requeue_after == SAFETY


def test_timed_waits_keep_their_exact_durations() -> None:
    """Pauses and the Initializing settle are time-based: they keep Kruise's durations."""
    timed = _plan(_progressing("StepPaused", index=2), _br(1, batch=1))
    assert timed.requeue_after == pytest.approx(20.0)  # 30 s pause, 10 s elapsed
    status = _progressing("StepPaused", reason="Initializing")
    status["conditions"][0]["lastUpdateTime"] = (NOW - timedelta(seconds=1)).isoformat()
    assert _plan(status).requeue_after == pytest.approx(2.0)


def test_safety_poll_is_long_and_jittered() -> None:
    polls = {safety_poll(f"uid-{i}") for i in range(200)}
    assert all(24.0 <= p <= 36.0 for p in polls)
    assert max(polls) - min(polls) > 8.0  # spread over the ± 20 % band, not one shared instant
    assert safety_poll("u1") == safety_poll("u1")  # pure: the same object always gets the same


# -- transitions folded into one pass (one status write each instead of two) ------------------------


def test_the_last_step_starts_finalising_in_the_same_pass() -> None:
    result = _plan(_progressing("StepUpgrade", index=3), _br(2, batch=2))
    assert _sub(result).current_step_state == "Completed"
    assert result.status.conditions[0].reason == "Finalising"
    assert _sub(result).finalising_step == "ResumeWorkload"
    assert any(isinstance(a, PatchBatchRelease) for a in result.actions)


@pytest.mark.parametrize(("annotated", "want_phase"), [(False, "Healthy"), (True, "Progressing")])
def test_a_finished_finalisation_is_healthy_at_once_unless_the_annotation_is_still_seen(
    annotated: bool, want_phase: str
) -> None:
    status = _progressing("Completed", index=3, reason="Finalising", finalisingStep="ReleaseWorkloadControl")
    r = rollout(steps=STEPS, status=status, metadata=_meta())
    annotations = {"rollouts.kruise.io/in-progressing": "{}"} if annotated else {}
    w = workload(in_rollout_progressing=annotated, annotations=annotations)
    result = plan(RolloutObserved(rollout=r, workload=w, now=NOW, batch_release=None))
    conds = {c.type: c for c in result.status.conditions}
    assert result.status.phase == want_phase
    if annotated:
        # Still held (its removal not seen yet): removed again, and not Completed from this pass,
        # whose status is stored before the removal goes out (issue 10: a checked end state).
        assert RemoveWorkloadAnnotation("rollouts.kruise.io/in-progressing") in result.actions
        assert (conds["Progressing"].reason, "Succeeded" in conds) == ("Finalising", False)
    else:
        assert (conds["Progressing"].reason, conds["Succeeded"].status) == ("Completed", "True")


def _lane_rollout(
    canary: dict[str, Any], annotations: dict[str, str] | None = None, kind: str = "Deployment"
) -> Any:
    return Rollout.from_obj(
        {
            "apiVersion": "rollouts.kruise.io/v1beta1",
            "kind": "Rollout",
            "metadata": {"name": "rollout-a", "namespace": "default", "annotations": annotations or {}},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": kind, "name": "spring-cloud-a"},
                "strategy": {"canary": {"steps": [{"replicas": 1, "pause": {}}], **canary}},
            },
        }
    )


GRAY = {"patchPodTemplateMetadata": {"labels": {"opensergo.io/canary-gray": "gray"}}}


@pytest.mark.parametrize(
    ("canary", "annotations", "kind", "style"),
    [
        # Seed 003's v1beta1 file: a lane (trafficRoutingRef) + gray labels -> a gray Deployment.
        ({**GRAY, "trafficRoutingRef": "mse-traffic"}, None, "Deployment", "Canary"),
        (GRAY, {"rollouts.kruise.io/trafficrouting": "mse-traffic"}, "Deployment", "Canary"),
        # Anything else keeps Kruise's style.
        (GRAY, None, "Deployment", "Partition"),
        ({"trafficRoutingRef": "mse-traffic"}, None, "Deployment", "Partition"),
        ({**GRAY, "trafficRoutingRef": "mse-traffic"}, None, "StatefulSet", "Partition"),
        ({**GRAY, "enableExtraWorkloadForCanary": True}, None, "Deployment", "Canary"),
    ],
)
def test_lane_members_with_gray_labels_release_in_canary_style(
    canary: dict[str, Any], annotations: dict[str, str] | None, kind: str, style: str
) -> None:
    assert rolling_style(_lane_rollout(canary, annotations, kind)) == style
