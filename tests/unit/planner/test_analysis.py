"""Analysis in the step machine (planner/analysis.py), driven through lifecycle.plan() on snapshots.

Each case is a Rollout caught in one state with its AnalysisRuns as the observer reduces them; the plan
must create, follow, hold, promote, roll back or terminate exactly as the module docstring says, and a
Rollout without analysis must plan as before.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, workload

from graylane.api import analysis as an
from graylane.api.abort_record import ABORT_RECORD_ANNOTATION
from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import Rollout, RolloutStatus
from graylane.planner import analysis
from graylane.planner.actions import (
    CreateAnalysisRun,
    RecordEvent,
    RollBackWorkload,
    SetRolloutAnnotation,
    TerminateAnalysisRun,
)
from graylane.planner.analysis_observed import AnalysisObserved, RunSeen
from graylane.planner.lifecycle import plan
from graylane.planner.observed import RolloutObserved

STARTED = NOW - timedelta(minutes=5)
RELEASE = str(int(STARTED.timestamp()))
TEMPLATE_SPEC = an.AnalysisTemplateSpec.model_validate(
    {
        "args": [{"name": "version"}],
        "metrics": [
            {
                "name": "error-rate",
                "interval": "10s",
                "count": 3,
                "successCondition": "result[0] < 0.05",
                "provider": {
                    "prometheus": {
                        "address": "http://prometheus:9090",
                        "query": 'errors{version="{{args.version}}"}',
                    }
                },
            }
        ],
    }
)
EXPOSURE_SPEC = an.AnalysisTemplateSpec.model_validate(
    {
        "metrics": [
            {
                "name": "exposure",
                "provider": {
                    "exposure": {"address": "http://prometheus:9090", "canary": "c[{{window}}]", "total": "t"}
                },
            }
        ]
    }
)
ANALYSIS = {"templates": [{"templateName": "errors"}], "args": [{"name": "version", "value": "v2"}]}
STABLE_TEMPLATE = {"metadata": {"labels": {"app": "demo", "pod-template-hash": "s1"}}, "spec": {"x": 1}}
RELEASE_TEMPLATE = {"metadata": {"labels": {"app": "demo"}}, "spec": {"x": 2}}


def make_rollout(
    steps: list[dict[str, Any]],
    *,
    state: str = "StepMetricsAnalysis",
    index: int = 1,
    background: dict[str, Any] | None = None,
    routed: bool = False,
    reason: str = "InRolling",
    conditions: list[dict[str, Any]] | None = None,
) -> Rollout:
    canary: dict[str, Any] = {"steps": steps}
    if background is not None:
        canary["analysis"] = background
    if routed:
        canary["trafficRoutings"] = [{"service": "demo", "ingress": {"name": "demo"}}]
    body = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default", "uid": "u1", "generation": 2},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
    }
    strategy = Rollout.from_obj(body).spec.strategy
    body["metadata"] |= {
        "finalizers": ["rollouts.kruise.io/rollout"],
        "annotations": {"rollouts.kruise.io/hash": rollout_hash(strategy)},
    }
    progressing = {
        "type": "Progressing",
        "status": "True",
        "reason": reason,
        "message": "Rollout is in Progressing",
        "lastUpdateTime": STARTED.isoformat(),
        "lastTransitionTime": STARTED.isoformat(),
    }
    body["status"] = {
        "phase": "Progressing",
        "conditions": [progressing, *(conditions or [])],
        "canaryStatus": {
            "canaryRevision": "c1",
            "stableRevision": "s1",
            "podTemplateHash": "p1",
            "rolloutHash": rollout_hash(strategy),
            "currentStepIndex": index,
            "nextStepIndex": index + 1 if index < len(steps) else -1,
            "currentStepState": state,
            "lastUpdateTime": (NOW - timedelta(seconds=10)).isoformat(),
        },
    }
    return Rollout.from_obj(body)


def run(step: str, phase: str = "", **fields: Any) -> RunSeen:
    name = analysis.run_name("demo", "c1", RELEASE, step)
    return RunSeen(name=name, step=step, revision="c1", release=RELEASE, phase=phase, **fields)


def observed(
    r: Rollout,
    runs: tuple[RunSeen, ...] = (),
    *,
    templates: dict[tuple[bool, str], an.AnalysisTemplateSpec | str] | None = None,
    stable: dict[str, Any] | None = STABLE_TEMPLATE,
) -> RolloutObserved:
    seen = AnalysisObserved(
        runs=runs,
        templates={(False, "errors"): TEMPLATE_SPEC} if templates is None else templates,
        stable_template=stable,
        release_template=RELEASE_TEMPLATE,
    )
    return RolloutObserved(rollout=r, workload=workload(), now=NOW, analysis=seen)


def condition(status: RolloutStatus) -> Any:
    return status.condition(analysis.CONDITION)


def of(actions: tuple[Any, ...], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


STEPS = [{"replicas": 1, "analysis": ANALYSIS}, {"replicas": "100%"}]


def test_a_step_without_analysis_pauses_as_before() -> None:
    r = make_rollout([{"replicas": 1}, {"replicas": "100%"}])
    result = plan(observed(r, templates={}))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    assert sub.current_step_state == "StepPaused"
    assert "you need manually confirm" in result.status.message
    assert condition(result.status) is None
    assert not of(result.actions, CreateAnalysisRun)


def test_the_step_creates_its_run_owned_by_the_rollout_and_waits() -> None:
    result = plan(observed(make_rollout(STEPS)))
    (create,) = of(result.actions, CreateAnalysisRun)
    obj = create.run
    assert obj["metadata"]["name"] == analysis.run_name("demo", "c1", RELEASE, "1")
    assert obj["metadata"]["labels"] == {
        an.STEP_LABEL: "1",
        an.REVISION_LABEL: "c1",
        an.RELEASE_LABEL: RELEASE,
        an.ROLLOUT_LABEL: "demo",
    }
    (owner,) = obj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Rollout",
        "demo",
        "u1",
        True,
    )
    query = obj["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert query == 'errors{version="v2"}'  # the Rollout's argument, substituted
    assert result.status is not None
    assert result.status.canary_status is not None
    assert result.status.canary_status.current_step_state == "StepMetricsAnalysis"
    assert condition(result.status).reason == analysis.Reason.RUNNING
    assert "waits for analysis" in result.status.message


def test_a_missing_template_is_reported_once_and_retried() -> None:
    result = plan(observed(make_rollout(STEPS), templates={}))
    assert not of(result.actions, CreateAnalysisRun)
    (event,) = of(result.actions, RecordEvent)
    assert (event.type, event.reason) == ("Warning", analysis.Reason.NOT_STARTED)
    assert "AnalysisTemplate 'errors' not found" in event.message
    assert result.status is not None
    assert "cannot start: AnalysisTemplate 'errors' not found" in result.status.message
    assert result.requeue_after is not None
    assert result.requeue_after <= analysis.RETRY_SECONDS
    # The next pass with the same state says nothing new.
    again = plan(observed(make_rollout(STEPS, conditions=[_cond(result.status)]), templates={}))
    assert not of(again.actions, RecordEvent)


def _cond(status: RolloutStatus) -> dict[str, Any]:
    found = condition(status)
    assert found is not None
    return dict(found.to_obj())


def test_a_running_run_keeps_the_step_waiting_with_its_progress() -> None:
    seen = run("1", "Running", progress="error-rate: 1 measured, last [0.01]")
    result = plan(observed(make_rollout(STEPS), (seen,)))
    assert not of(result.actions, CreateAnalysisRun)
    assert result.status is not None
    assert result.status.canary_status is not None
    assert result.status.canary_status.current_step_state == "StepMetricsAnalysis"
    assert "error-rate: 1 measured, last [0.01]" in result.status.message


def test_an_exposure_mismatch_holds_the_step_with_the_observed_split() -> None:
    hold = "observed split differs from the step's: canary 0.0% (0 of 500 requests in 30s), intended 20% +- 5"
    seen = run("1", "Running", exposure_hold=hold)
    result = plan(observed(make_rollout(STEPS), (seen,)))
    assert result.status is not None
    assert result.status.canary_status is not None
    assert result.status.canary_status.current_step_state == "StepMetricsAnalysis"
    assert hold in result.status.message
    assert "holds" in result.status.message
    assert condition(result.status).reason == analysis.Reason.EXPOSURE
    assert condition(result.status).status == "False"
    assert [e.reason for e in of(result.actions, RecordEvent)] == [analysis.Reason.EXPOSURE]


def test_a_successful_run_approves_the_step() -> None:
    result = plan(observed(make_rollout(STEPS), (run("1", "Successful"),)))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    assert (sub.current_step_index, sub.current_step_state) == (2, "StepUpgrade")
    assert condition(result.status).reason == analysis.Reason.SUCCESSFUL


def test_a_successful_run_still_waits_out_a_pause_duration() -> None:
    steps = [{"replicas": 1, "analysis": ANALYSIS, "pause": {"duration": 60}}, {"replicas": "100%"}]
    result = plan(observed(make_rollout(steps), (run("1", "Successful"),)))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    assert (sub.current_step_index, sub.current_step_state) == (1, "StepPaused")
    assert result.requeue_after is not None
    assert 0 < result.requeue_after <= 60


def test_a_failed_run_rolls_the_workload_back_with_the_evidence() -> None:
    why = 'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0); value [0.1]'
    result = plan(observed(make_rollout(STEPS), (run("1", "Failed", message=why),)))
    (back,) = of(result.actions, RollBackWorkload)
    assert back.template == {"metadata": {"labels": {"app": "demo"}}, "spec": {"x": 1}}  # hash label gone
    (record,) = of(result.actions, SetRolloutAnnotation)
    assert record.key == ABORT_RECORD_ANNOTATION
    assert json.loads(record.value) == {
        "release": RELEASE_TEMPLATE,
        "stable": {"metadata": {"labels": {"app": "demo"}}, "spec": {"x": 1}},
    }
    (event,) = of(result.actions, RecordEvent)
    assert (event.type, event.reason) == ("Warning", analysis.Reason.FAILED)
    assert why in event.message
    assert result.status is not None
    assert why in result.status.message
    assert "rolling back" in result.status.message
    assert condition(result.status).reason == analysis.Reason.FAILED


def test_a_failed_run_without_the_stable_replica_set_says_it_cannot_roll_back() -> None:
    result = plan(observed(make_rollout(STEPS), (run("1", "Failed", message="bad"),), stable=None))
    assert not of(result.actions, RollBackWorkload)
    assert result.status is not None
    assert "cannot roll back (the stable ReplicaSet is not found)" in result.status.message


@pytest.mark.parametrize("phase", ["Inconclusive", "Error"])
def test_an_inconclusive_run_pauses_for_a_person_and_approval_continues(phase: str) -> None:
    steps = [{"replicas": 1, "analysis": ANALYSIS, "pause": {"duration": 5}}, {"replicas": "100%"}]
    seen = run("1", phase, message="consecutiveErrors (5) > consecutiveErrorLimit (4)")
    result = plan(observed(make_rollout(steps), (seen,)))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    assert sub.current_step_state == "StepPaused"
    assert "you need manually confirm to enter the next step" in result.status.message
    assert f"{phase}: consecutiveErrors (5)" in result.status.message
    assert condition(result.status).status == "False"
    assert [e.type for e in of(result.actions, RecordEvent)] == ["Warning"]
    # Held even after its pause duration: the run's verdict needs a person.
    later = make_rollout(steps, state="StepPaused", conditions=[_cond(result.status)])
    held = plan(RolloutObserved(later, workload(), NOW + timedelta(minutes=5), analysis=_analysis(seen)))
    assert held.status is not None
    assert held.status.canary_status is not None
    assert held.status.canary_status.current_step_state == "StepPaused"
    # A person approves (StepReady): the release moves on.
    approved = make_rollout(steps, state="StepReady", conditions=[_cond(result.status)])
    moved = plan(observed(approved, (seen,)))
    assert moved.status is not None
    assert moved.status.canary_status is not None
    assert moved.status.canary_status.current_step_index == 2


def _analysis(*runs: RunSeen) -> AnalysisObserved:
    return AnalysisObserved(runs=runs, templates={(False, "errors"): TEMPLATE_SPEC})


BACKGROUND = {**ANALYSIS, "startingStep": 2}
PLAIN_STEPS = [{"replicas": 1, "pause": {"duration": 5}}, {"replicas": 2}, {"replicas": "100%"}]


def test_background_analysis_starts_at_its_starting_step() -> None:
    before = plan(observed(make_rollout(PLAIN_STEPS, state="StepPaused", background=BACKGROUND)))
    assert not of(before.actions, CreateAnalysisRun)
    at = plan(observed(make_rollout(PLAIN_STEPS, state="StepUpgrade", index=2, background=BACKGROUND)))
    (create,) = of(at.actions, CreateAnalysisRun)
    assert create.run["metadata"]["labels"][an.STEP_LABEL] == an.BACKGROUND_STEP
    assert create.run["metadata"]["name"].endswith("-bg")


def test_background_failure_rolls_back_at_any_state() -> None:
    r = make_rollout(PLAIN_STEPS, state="StepUpgrade", index=2, background=BACKGROUND)
    result = plan(observed(r, (run(an.BACKGROUND_STEP, "Failed", message="bad"),)))
    assert of(result.actions, RollBackWorkload)
    assert result.status is not None
    assert result.status.canary_status is not None
    assert result.status.canary_status.current_step_state == "StepUpgrade"


def test_inconclusive_background_analysis_holds_every_following_step_even_the_last() -> None:
    seen = run(an.BACKGROUND_STEP, "Inconclusive", message="no data")
    r = make_rollout(PLAIN_STEPS, state="StepPaused", index=3, background=BACKGROUND)
    result = plan(observed(r, (seen,)))
    assert result.status is not None
    assert result.status.canary_status is not None
    assert result.status.canary_status.current_step_state == "StepPaused"
    assert "Inconclusive: no data" in result.status.message


def test_runs_that_no_longer_decide_are_terminated() -> None:
    stale = run("1", "Running")  # step 1's run, while step 2 is upgrading
    other_release = RunSeen(name="old", step="1", revision="c0", release="1", phase="Running")
    done = run("2", "Successful")
    r = make_rollout(STEPS, state="StepUpgrade", index=2)
    result = plan(observed(r, (stale, other_release, done)))
    assert sorted(t.name for t in of(result.actions, TerminateAnalysisRun)) == sorted(["old", stale.name])


def test_finalising_terminates_the_background_run() -> None:
    bg = run(an.BACKGROUND_STEP, "Running")
    r = make_rollout(PLAIN_STEPS, state="Completed", index=3, background=BACKGROUND, reason="Finalising")
    result = plan(observed(r, (bg,)))
    assert [t.name for t in of(result.actions, TerminateAnalysisRun)] == [bg.name]


def test_the_step_weight_goes_into_measured_exposure() -> None:
    steps = [{"replicas": 1, "traffic": "20%", "analysis": {"templates": [{"templateName": "x"}]}}]
    r = make_rollout([*steps, {"replicas": "100%"}], routed=True)
    o = observed(r, templates={(False, "x"): EXPOSURE_SPEC})
    result = plan(o)
    (create,) = of(result.actions, CreateAnalysisRun)
    assert create.run["spec"]["metrics"][0]["provider"]["exposure"]["expectedWeight"] == 20


def test_cancelling_keeps_the_analysis_evidence_in_the_message() -> None:
    failed = {
        "type": analysis.CONDITION,
        "status": "False",
        "reason": analysis.Reason.FAILED,
        "message": "analysis demo-x Failed: error-rate 0.1",
    }
    r = make_rollout(STEPS, conditions=[failed])
    rolled_back = workload(canary_revision="s1", is_in_rollback=True)
    result = plan(RolloutObserved(r, rolled_back, NOW, analysis=_analysis()))
    assert result.status is not None
    assert result.status.message.startswith("The workload has been rolled back")
    assert result.status.message.endswith("analysis demo-x Failed: error-rate 0.1")


def test_a_new_release_forgets_the_last_analysis_condition() -> None:
    failed = {"type": analysis.CONDITION, "status": "False", "reason": analysis.Reason.FAILED, "message": "x"}
    r = make_rollout(STEPS, reason="Initializing", conditions=[failed])
    result = plan(RolloutObserved(r, workload(), NOW, analysis=_analysis()))
    assert result.status is not None
    assert condition(result.status) is None
