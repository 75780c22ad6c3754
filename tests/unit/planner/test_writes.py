"""The no-op status write rule: only real transitions are written; timestamps and mirrors are folded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW

from graylane.api.batchrelease import BatchReleaseStatus
from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.planner.actions import ApplyChange, RecordEvent
from graylane.planner.changes import ObjectKind, Patch
from graylane.planner.writes import batch_release_status_changed, rollout_status_changed

EARLIER = (NOW - timedelta(seconds=30)).isoformat()
LATER = NOW.isoformat()


def _rollout(state: str = "StepUpgrade", **canary: Any) -> RolloutStatus:
    sub = {
        "currentStepIndex": 1,
        "currentStepState": state,
        "canaryReplicas": 0,
        "canaryReadyReplicas": 0,
        "observedWorkloadGeneration": 2,
        "message": "BatchRelease is at state Upgrading, rollout-id , step 1",
        "lastUpdateTime": EARLIER,
        **canary,
    }
    cond = {"type": "Progressing", "status": "True", "reason": "InRolling", "lastUpdateTime": EARLIER}
    return RolloutStatus.from_obj({"phase": "Progressing", "canaryStatus": sub, "conditions": [cond]})


def test_an_identical_rollout_status_is_not_written() -> None:
    assert not rollout_status_changed(_rollout(), _rollout())


def test_only_timestamps_moved_is_not_written() -> None:
    new = _rollout(lastUpdateTime=LATER)
    new.conditions[0].last_update_time = NOW
    assert not rollout_status_changed(_rollout(), new)
    assert not rollout_status_changed(_rollout(), new, (RecordEvent("Normal", "x", "y"),))


def test_a_timestamp_that_starts_a_grace_period_is_written() -> None:
    """lastUpdateTime moved together with a route change: the next pass measures the grace from it."""
    change = ApplyChange(Patch(ObjectKind.SERVICE, "demo-canary", {"spec": {}}))
    assert rollout_status_changed(_rollout(), _rollout(lastUpdateTime=LATER), (change,))


@pytest.mark.parametrize(
    "mirror",
    [
        {"message": "BatchRelease is at state Verifying, rollout-id , step 1"},
        {"canaryReplicas": 1},
        {"canaryReadyReplicas": 1},
        {"observedWorkloadGeneration": 3},
        {"podTemplateHash": "5d8f9c7b6"},  # the canary ReplicaSet appeared; the step's end records it
    ],
)
def test_batch_release_mirror_is_folded_while_the_step_waits_for_it(mirror: dict[str, Any]) -> None:
    assert not rollout_status_changed(_rollout(), _rollout(**mirror))


@pytest.mark.parametrize(
    ("mirror", "want"),
    [
        ({"canaryReadyReplicas": 1}, True),  # a paused step keeps its numbers current
        ({"message": "BatchRelease is at state Ready, rollout-id , step 1"}, True),
        ({"observedWorkloadGeneration": 3}, False),  # a pause/resume of the workload, never alone
        ({"podTemplateHash": "5d8f9c7b6"}, True),
    ],
)
def test_mirror_outside_the_upgrade_wait(mirror: dict[str, Any], want: bool) -> None:
    assert rollout_status_changed(_rollout("StepPaused"), _rollout("StepPaused", **mirror)) is want


def test_a_real_transition_is_written_with_the_folded_fields() -> None:
    new = _rollout("StepPaused", canaryReplicas=1, canaryReadyReplicas=1)
    assert rollout_status_changed(_rollout(), new)


def _br(state: str = "Verifying", **canary: Any) -> BatchReleaseStatus:
    sub = {"batchState": state, "currentBatch": 0, "updatedReplicas": 1, "updatedReadyReplicas": 0, **canary}
    return BatchReleaseStatus.from_obj({"phase": "Progressing", "observedGeneration": 2, "canaryStatus": sub})


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        (_br(), _br(), False),
        (_br(), _br(updatedReadyReplicas=1), False),  # pods coming up: folded into the Ready write
        (_br(), _br(updatedReplicas=2), False),
        (_br("Ready"), _br("Ready", updatedReadyReplicas=1), True),  # a Ready batch stays current
        (_br(), _br("Ready", batchReadyTime=LATER), True),
        (_br("Upgrading"), _br(), True),
    ],
)
def test_batch_release_status_rule(old: BatchReleaseStatus, new: BatchReleaseStatus, want: bool) -> None:
    assert batch_release_status_changed(old, new) is want


def test_batch_release_observed_generation_is_never_folded() -> None:
    """The Rollout reads observedGeneration == generation before trusting a Ready batch."""
    new = _br()
    new.observed_generation = 3
    assert batch_release_status_changed(_br(), new)


def test_observed_workload_generation_is_written_alone_outside_a_release() -> None:
    """A scale of a Healthy Rollout's workload is a user's edit: tools compare the generation at once."""
    old, new = _rollout(state="Completed"), _rollout(state="Completed", observedWorkloadGeneration=3)
    old.phase = new.phase = "Healthy"
    assert rollout_status_changed(old, new)
