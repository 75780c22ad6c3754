"""The Rollout's outer lifecycle (reference §2.1): phases, messages, prelude actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, observed, rollout, workload

from graylane.api.hashing import rollout_hash
from graylane.planner.actions import (
    AddRolloutFinalizer,
    LabelWorkload,
    RemoveRolloutFinalizer,
    RemoveWorkloadAnnotation,
    RemoveWorkloadLabel,
    SetRolloutAnnotation,
    UnpauseWorkload,
)
from graylane.planner.lifecycle import ADMISSION_WINDOW_SECONDS, plan
from graylane.planner.observed import RolloutObserved
from graylane.planner.polling import safety_poll

FIN = "rollouts.kruise.io/rollout"
TERMINATED = {
    "type": "Terminating",
    "status": "False",
    "reason": "Completed",
    "message": "Rollout is in terminating",
    "lastUpdateTime": "2026-11-22T12:00:00Z",
    "lastTransitionTime": "2026-11-22T12:00:00Z",
}


def _settled(**kwargs: Any) -> dict[str, Any]:
    """metadata with finalizer and current hash, so only the status logic is under test."""
    r = rollout(**kwargs)
    return {"finalizers": [FIN], "annotations": {"rollouts.kruise.io/hash": rollout_hash(r.spec.strategy)}}


@pytest.mark.parametrize(
    ("phase", "disabled", "has_workload", "in_progressing", "want_phase", "want_message"),
    [
        ("", False, False, False, "Initial", "Workload Not Found"),
        ("Healthy", False, False, False, "Initial", "Workload Not Found"),
        ("", False, True, False, "Healthy", "rollout is healthy"),
        ("Initial", False, True, False, "Healthy", "rollout is healthy"),
        ("Healthy", False, True, True, "Progressing", ""),
        ("Healthy", True, True, False, "Disabled", "Rollout is disabled"),
        (
            "Progressing",
            True,
            True,
            True,
            "Disabled",
            "Rollout is disabled",
        ),  # nothing to undo: straight through
        ("Disabled", False, True, False, "Healthy", "rollout is healthy"),
        ("", True, False, False, "Disabled", "Rollout is disabled"),
    ],
)
def test_phase_transitions(
    phase: str, disabled: bool, has_workload: bool, in_progressing: bool, want_phase: str, want_message: str
) -> None:
    meta = _settled(disabled=disabled)
    r = rollout(status={"phase": phase, "message": ""}, metadata=meta, disabled=disabled)
    w = workload(in_rollout_progressing=in_progressing) if has_workload else None

    result = plan(observed(r, w))

    assert result.status is not None
    assert (result.status.phase, result.status.message) == (want_phase, want_message)
    assert result.status.observed_generation == 2


def test_missing_workload_resets_the_whole_status() -> None:
    r = rollout(
        status={"phase": "Healthy", "message": "x", "canaryStatus": {"canaryRevision": "c1"}},
        metadata=_settled(),
    )
    result = plan(observed(r, None))
    assert result.status is not None
    assert result.status.to_obj() == {
        "observedGeneration": 2,
        "phase": "Initial",
        "message": "Workload Not Found",
        "currentStepIndex": 0,
        "currentStepState": "",
    }


def test_first_deploy_synthesises_a_completed_sub_status() -> None:
    r = rollout(status={"phase": "Healthy"}, metadata=_settled())
    result = plan(observed(r, workload(labels={"rollouts.kruise.io/rollout-id": "r1"})))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    assert (sub.current_step_index, sub.current_step_state, sub.observed_rollout_id) == (2, "Completed", "r1")
    assert result.status.message == "workload deployment is completed"
    assert (result.status.current_step_index, result.status.current_step_state) == (2, "Completed")


def test_entering_progressing_sets_initializing_and_drops_succeeded() -> None:
    succeeded = {"type": "Succeeded", "status": "True", "reason": "", "message": ""}
    r = rollout(status={"phase": "Healthy", "conditions": [succeeded]}, metadata=_settled())
    result = plan(observed(r, workload(in_rollout_progressing=True)))
    assert result.status is not None
    [progressing] = result.status.conditions
    assert (progressing.type, progressing.status, progressing.reason, progressing.message) == (
        "Progressing",
        "True",
        "Initializing",
        "Rollout is in Progressing",
    )


def test_inconsistent_workload_waits_without_writing_status() -> None:
    r = rollout(status={"phase": "Healthy"}, metadata=_settled())
    result = plan(observed(r, workload(status_consistent=False)))
    assert result.status is None
    # Healthy: the Deployment status update (observedGeneration) is watched and wakes it; no 3 s poll.
    assert result.requeue_after is None


def test_prelude_adds_finalizer_label_and_hash() -> None:
    r = rollout()
    result = plan(observed(r, workload(labels={})))
    assert result.actions == (
        AddRolloutFinalizer(FIN),
        LabelWorkload("rollouts.kruise.io/workload-type", "deployment"),
        SetRolloutAnnotation("rollouts.kruise.io/hash", rollout_hash(r.spec.strategy)),
    )


def test_settled_rollout_needs_no_actions() -> None:
    r = rollout(status={"phase": "Healthy"}, metadata=_settled())
    assert plan(observed(r, workload())).actions == ()


def test_deletion_goes_terminating_then_completed_then_drops_finalizer() -> None:
    meta = {**_settled(), "deletionTimestamp": "2026-11-22T12:00:00Z"}
    first = plan(observed(rollout(status={"phase": "Healthy"}, metadata=meta), workload()))
    assert first.status is not None
    assert first.status.phase == "Terminating"
    [term] = first.status.conditions
    assert (term.type, term.reason, term.status) == ("Terminating", "Completed", "False")
    assert first.actions == ()

    done = rollout(status=first.status.to_obj(), metadata=meta)
    later = NOW + dt.timedelta(seconds=ADMISSION_WINDOW_SECONDS)
    second = plan(RolloutObserved(rollout=done, workload=workload(), now=later))
    assert second.actions == (RemoveRolloutFinalizer(FIN),)
    assert second.status is None


@pytest.mark.parametrize(("after", "wait"), [(0, 12.0), (5, 7.0), (12, None), (30, None)])
def test_the_finalizer_stays_while_an_admission_that_read_the_rollout_alive_may_still_land(
    after: int, wait: float | None
) -> None:
    """Issue 10 item 6: an admission that read the Rollout just before its deletion may hold the workload
    up to the webhook's timeout later; the finalizer (and the fresh read of the workload the pass that
    removes it makes) waits that long after the deletion. Without a workload nothing can be held."""
    meta = {**_settled(), "deletionTimestamp": "2026-11-22T12:00:00Z"}
    status = {"phase": "Terminating", "conditions": [TERMINATED]}
    r = rollout(status=status, metadata=meta)
    now = NOW + dt.timedelta(seconds=after)

    result = plan(RolloutObserved(rollout=r, workload=workload(), now=now))

    if wait is None:
        assert result.actions == (RemoveRolloutFinalizer(FIN),)
    else:
        assert (result.actions, result.requeue_after) == ((), wait)
    gone = plan(RolloutObserved(rollout=r, workload=None, now=NOW))
    assert gone.actions == (RemoveRolloutFinalizer(FIN),)


def test_refreshes_observed_rollout_id_when_revision_matches() -> None:
    status = {"phase": "Healthy", "canaryStatus": {"canaryRevision": "c1", "observedRolloutID": "old"}}
    r = rollout(status=status, metadata=_settled())
    result = plan(observed(r, workload(generation=7, labels={"rollouts.kruise.io/rollout-id": "new"})))
    assert result.status is not None
    assert result.status.canary_status is not None
    assert result.status.canary_status.observed_rollout_id == "new"
    assert result.status.canary_status.observed_workload_generation == 7


def test_inconsistent_workload_in_flight_keeps_only_a_safety_poll() -> None:
    meta = {**_settled(), "uid": "u1"}
    r = rollout(status={"phase": "Progressing"}, metadata=meta)
    result = plan(observed(r, workload(status_consistent=False)))
    assert result.status is None
    assert result.requeue_after == safety_poll("u1")  # 30 s ± 20 %, not Kruise's 3 s re-check


def test_a_workload_held_again_after_termination_completed_is_handed_back_before_the_finalizer_goes() -> None:
    # The webhook's Rollout lister is a cache: an admission right after the deletion may still hold the
    # workload. The Rollout is the only one that would ever release it, so it does that first.
    meta = {**_settled(), "deletionTimestamp": "2026-11-22T12:00:00Z"}
    first = plan(observed(rollout(status={"phase": "Healthy"}, metadata=meta), workload()))
    assert first.status is not None
    held = workload(paused=True, annotations={"rollouts.kruise.io/in-progressing": "{}"})
    again = plan(observed(rollout(status=first.status.to_obj(), metadata=meta), held))
    assert RemoveRolloutFinalizer(FIN) not in again.actions
    assert RemoveWorkloadAnnotation("rollouts.kruise.io/in-progressing") in again.actions
    assert UnpauseWorkload() in again.actions


@pytest.mark.parametrize(("extra_workload", "stable"), [(True, "oldest"), (False, "s1")])
def test_first_deploy_sub_status_fields_as_kruise_fills_them(extra_workload: bool, stable: str) -> None:
    """stableRevision by rolling style, no podTemplateHash outside a release, nextStepIndex -1."""
    r = rollout(status={"phase": "Healthy"}, metadata=_settled())
    r.spec.strategy.canary.enable_extra_workload_for_canary = extra_workload  # type: ignore[union-attr]
    result = plan(observed(r, workload(oldest_active_revision="oldest")))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    assert (sub.stable_revision, sub.pod_template_hash, sub.next_step_index) == (stable, "", -1)
    assert (sub.canary_revision, sub.observed_rollout_id) == ("c1", "c1")


@pytest.mark.parametrize(
    ("labels", "rollback", "want"),
    [
        ({}, False, "c1"),  # no label: the canary revision
        ({}, True, "rollback-c1"),
        ({"rollouts.kruise.io/rollout-id": "r9"}, True, "r9"),  # the user's label always wins
    ],
)
def test_rollout_id_defaults_to_the_canary_revision(
    labels: dict[str, str], rollback: bool, want: str
) -> None:
    assert workload(labels=labels, is_in_rollback=rollback).rollout_id == want


HELD = {"rollouts.kruise.io/in-progressing": '{"rolloutName":"demo"}'}
STABLE_LABEL = "rollouts.kruise.io/stable-revision"


@pytest.mark.parametrize("stored", ["Healthy", "Disabled"])
def test_a_disabled_rollout_lets_go_of_a_workload_the_webhook_held(stored: str) -> None:
    """Issue 10 chaos: disabled before it saw the release (Healthy → Disabled at once), or held by an
    admission whose Rollout cache still showed it enabled: nothing else would ever unpause it."""
    r = rollout(status={"phase": stored}, metadata=_settled(disabled=True), disabled=True)
    held = workload(paused=True, in_rollout_progressing=True, annotations=HELD)

    result = plan(observed(r, held))

    assert RemoveWorkloadAnnotation("rollouts.kruise.io/in-progressing") in result.actions
    assert UnpauseWorkload() in result.actions
    phase = result.status.phase if result.status is not None else stored
    assert phase == "Disabled"


def test_a_disabled_rollout_leaves_a_free_workload_alone() -> None:
    r = rollout(status={"phase": "Disabled"}, metadata=_settled(disabled=True), disabled=True)
    assert plan(observed(r, workload(paused=True))).actions == ()  # a person's pause stays


@pytest.mark.parametrize(
    ("extra_workload", "dropped"),
    [(False, True), (True, False)],  # partition style drops it; canary style keeps it, as Kruise does
)
@pytest.mark.parametrize("how", ["deleted", "disabled"])
def test_a_hold_undone_without_a_batchrelease_drops_the_stable_revision_label_in_partition_style(
    extra_workload: bool, dropped: bool, how: str
) -> None:
    """Issue 10 chaos: deleted or disabled before its BatchRelease existed, the partition-style workload
    was unpaused with the webhook's stable-revision label left on it."""
    meta = _settled(disabled=how == "disabled")
    if how == "deleted":
        meta["deletionTimestamp"] = "2026-11-22T12:00:00Z"
    status = {
        "phase": "Progressing",
        "canaryStatus": {"currentStepIndex": 1, "currentStepState": "StepUpgrade"},
    }
    r = rollout(status=status, metadata=meta, disabled=how == "disabled")
    r.spec.strategy.canary.enable_extra_workload_for_canary = extra_workload  # type: ignore[union-attr]
    held = workload(paused=True, in_rollout_progressing=True, annotations=HELD, labels={STABLE_LABEL: "s1"})

    result = plan(observed(r, held))

    assert UnpauseWorkload() in result.actions
    assert (RemoveWorkloadLabel(STABLE_LABEL) in result.actions) is dropped


def test_the_admission_window_covers_the_webhook_timeout() -> None:
    from graylane.webhook.install import TIMEOUT_SECONDS

    assert ADMISSION_WINDOW_SECONDS >= TIMEOUT_SECONDS + 1  # + the deletion timestamp's truncated second
