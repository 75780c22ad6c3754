"""`status`/`describe` show each metric of the release's analysis (judge p-values included), what a
release held by analysis waits for, and `plan` lists the gates."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from tests.unit.cli.test_view_model import NOW, SEED, STAMP, pod, rollout, snapshot

from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli.analysis_view import analysis_rows, latest_runs
from graylane.cli.view import render_status
from graylane.cli.view_model import Snapshot, build_view
from graylane.planview import gates, plan_rollout

ANALYSIS = {"templates": [{"templateName": "errors"}], "args": [{"name": "version", "value": "v2"}]}


def run(step: str, release: str, phase: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {
        "analysis.graylane.io/step": step,
        "analysis.graylane.io/revision": "c1",
        "analysis.graylane.io/release": release,
    }
    spec = [{"name": m["name"], "provider": {"prometheus": {}}} for m in metrics]
    return {
        "metadata": {"name": f"demo-{release}-{step}", "labels": labels, "creationTimestamp": STAMP},
        "spec": {"metrics": spec},
        "status": {"phase": phase, "metricResults": metrics},
    }


JUDGED = {
    "name": "errors-judged",
    "phase": "Failed",
    "count": 3,
    "failed": 1,
    "inconclusive": 2,
    "message": "judge verdict Fail: regression at look 3",
    "measurements": [
        {
            "phase": "Failed",
            "value": "Fail: canary 20/200 (10.000%), stable 0/800 (0.000%)",
            "judge": {
                "verdict": "Fail",
                "look": 3,
                "tests": [
                    {"name": "conditional-binomial", "pValue": 0.0021, "threshold": 0.05, "rejected": True}
                ],
                "effects": [{"name": "rate ratio (canary / stable)", "estimate": 40.0, "lower": 6.1}],
            },
        }
    ],
}
THRESHOLD = {
    "name": "error-rate",
    "phase": "Running",
    "count": 1,
    "successful": 1,
    "measurements": [{"phase": "Successful", "value": "[0.001]"}],
}


def test_only_the_latest_release_is_shown_in_step_order() -> None:
    old = run("1", "100", "Failed", [THRESHOLD])
    newer = [run("background", "200", "Running", [THRESHOLD]), run("1", "200", "Failed", [JUDGED])]
    assert [r["metadata"]["name"] for r in latest_runs([old, *newer])] == [
        "demo-200-1",
        "demo-200-background",
    ]


def test_a_judge_row_carries_its_tests_and_effect() -> None:
    (row,) = analysis_rows([run("1", "1", "Failed", [JUDGED])])
    assert row.phase == "Failed"
    assert row.measured == "3: 1 Failed, 2 Inconclusive"
    assert row.p_values == "Fail at look 3: conditional-binomial p=0.0021 < 0.05"
    assert row.effect == "rate ratio (canary / stable) 40 [6.1, inf]"
    assert row.last_value.startswith("Fail: canary 20/200")


def test_status_and_describe_show_the_analysis() -> None:
    steps = [{**SEED[0], "analysis": ANALYSIS}, SEED[1]]
    ro = rollout(state="StepMetricsAnalysis", steps=steps)
    snap = snapshot(ro, [pod("c0", "c1")])
    snap = Snapshot(snap.rollout, snap.workload, snap.pods, [], (), (run("1", "1", "Running", [THRESHOLD]),))
    view = build_view(snap, NOW)
    assert view.waiting.kind == "analysis"
    assert [(m.metric, m.phase, m.last_value) for m in view.analysis] == [
        ("error-rate", "Running", "[0.001]")
    ]
    console = Console(width=200, record=True)
    console.print(render_status(view, describe=True))
    text = console.export_text()
    assert "Analysis" in text
    assert "error-rate" in text
    assert "[0.001]" in text


def test_an_inconclusive_analysis_waits_for_approval_and_says_so() -> None:
    ro = rollout()
    status = ro.status.model_copy(deep=True)
    held = {"type": "Analysis", "status": "False", "reason": "AnalysisRunInconclusive", "message": "no data"}
    status.conditions.append(type(status.conditions[0]).model_validate(held))
    view = build_view(snapshot(ro.model_copy(update={"status": status})), NOW)
    assert view.waiting.kind == "approval"
    assert view.waiting.text.startswith("analysis Inconclusive: waiting for approval")


def test_plan_lists_the_gates() -> None:
    body = rollout().to_obj()
    canary = body["spec"]["strategy"]["canary"]
    canary["steps"] = [{**SEED[0], "pause": {}, "analysis": ANALYSIS}, {"replicas": "100%"}]
    canary["analysis"] = {"templates": [{"templateName": "bg", "clusterScope": True}], "startingStep": 2}
    ro = Rollout.from_obj(body)
    lines = gates(ro)
    assert lines[0].startswith("step 1: analysis errors (version=v2) - Successful: on;")
    assert "Failed: roll back to the stable version" in lines[0]
    assert lines[1].startswith("from step 2 to the end: background analysis cluster bg")
    planned = plan_rollout(ro, 5)
    assert planned.steps[0].gate == "analysis errors (version=v2)"
    assert planned.steps[0].pause == "none (its analysis approves)"
    assert planned.gates == lines


def test_an_analysis_hold_is_paused_not_blocked_despite_its_warning_event() -> None:
    ro = rollout()
    status = ro.status.model_copy(deep=True)
    held = {
        "type": "Analysis",
        "status": "False",
        "reason": "AnalysisRunError",
        "message": "analysis x Error",
    }
    status.conditions.append(type(status.conditions[0]).model_validate(held))
    warning = {"type": "Warning", "reason": "AnalysisRunError", "message": "x", "lastTimestamp": STAMP}
    view = build_view(snapshot(ro.model_copy(update={"status": status}), events=[warning]), NOW)
    assert view.outcome == "Paused"
    assert view.outcome_why == "analysis x Error: approve to continue"
