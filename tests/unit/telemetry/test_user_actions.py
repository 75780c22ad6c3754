"""User actions read from consecutive Rollout versions, and their authors from managedFields."""

from __future__ import annotations

import copy
from typing import Any

from graylane.telemetry.user_actions import Verb, detect, owner_of


def rollout(
    state: str = "StepPaused", *, paused: bool = False, nxt: int = 2, reason: str = "InRolling"
) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo", "namespace": "ns", "annotations": {}, "managedFields": []},
        "spec": {"strategy": {"paused": paused, "canary": {"steps": [{}, {}, {}]}}},
        "status": {
            "phase": "Progressing",
            "conditions": [{"type": "Progressing", "reason": reason}],
            "canaryStatus": {"currentStepIndex": 1, "currentStepState": state, "nextStepIndex": nxt},
        },
    }


def owned(
    obj: dict[str, Any],
    manager: str,
    fields: dict[str, Any],
    subresource: str = "",
    time: str = "2026-01-01T00:00:01Z",
) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    entry: dict[str, Any] = {"manager": manager, "operation": "Update", "time": time, "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    obj["metadata"]["managedFields"].append(entry)
    return obj


STATE = {"f:status": {"f:canaryStatus": {"f:currentStepState": {}}}}


def test_an_approval_names_the_field_manager_that_wrote_it() -> None:
    new = owned(rollout("StepReady"), "graylane-cli:alice", STATE, "status")
    [action] = detect(rollout("StepPaused"), new, "graylane")
    assert (action.verb, action.who, action.reason) == (
        Verb.APPROVED,
        "graylane-cli:alice",
        "RolloutApproved",
    )
    assert action.message == "step 1 approved by graylane-cli:alice"


def test_the_controller_ending_a_timed_pause_is_not_a_user_action() -> None:
    new = owned(rollout("StepReady"), "graylane", STATE, "status")
    assert detect(rollout("StepPaused"), new, "graylane") == []


def test_pause_resume_jump_abort_and_undo() -> None:
    paused = owned(rollout(paused=True), "kubectl-patch", {"f:spec": {"f:strategy": {"f:paused": {}}}})
    assert [(a.verb, a.who) for a in detect(rollout(), paused, "graylane")] == [
        (Verb.PAUSED, "kubectl-patch")
    ]
    assert [a.verb for a in detect(paused, rollout(), "graylane")] == [Verb.RESUMED]
    jumped = rollout(nxt=3)
    assert [(a.verb, a.who) for a in detect(rollout(), jumped, "graylane")] == [(Verb.PROMOTED, "")]
    aborted = rollout()
    aborted["metadata"]["annotations"]["graylane.io/aborted-release"] = "{}"
    assert [a.verb for a in detect(rollout(), aborted, "graylane")] == [Verb.ABORTED]
    workload = {
        "metadata": {"managedFields": [{"manager": "argocd", "fieldsV1": {"f:spec": {"f:template": {}}}}]}
    }
    [undo] = detect(rollout(), rollout(reason="Cancelling"), "graylane", workload)
    assert (undo.verb, undo.who) == (Verb.UNDONE, "argocd")
    assert detect(None, rollout(), "graylane") == []


def test_the_latest_owner_wins_and_subresources_are_apart() -> None:
    obj = owned(rollout(), "a", STATE, "status", time="2026-01-01T00:00:01Z")
    obj = owned(obj, "b", STATE, "status", time="2026-01-01T00:00:02Z")
    obj = owned(obj, "c", STATE, "", time="2026-01-01T00:00:03Z")
    assert owner_of(obj, ("status", "canaryStatus", "currentStepState"), "status") == "b"
    assert owner_of(obj, ("spec", "strategy", "paused")) == ""
