"""Measured exposure (analysis/exposure.py): one look's verdict, holding rather than failing, scheduling,
the provider's two queries, and the template rules."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.analysis.contract import Share, ShareQuery
from graylane.analysis.planner import RunPlan, plan_run, with_status
from graylane.analysis.validation import validate_template_spec
from graylane.api.analysis import AnalysisPhase, AnalysisRun, AnalysisTemplateSpec, Metric

from .builders import ADDRESS, T0, at, outcome, run


def exposure_metric(expected: int | None = 20, **fields: Any) -> Metric:
    provider: dict[str, Any] = {
        "address": ADDRESS,
        "canary": 'sum(increase(requests{service="demo-canary"}[{{window}}])) or vector(0)',
        "total": 'sum(increase(requests{service=~"demo(-canary)?"}[{{window}}]))',
        "window": "20s",
        "minRequests": 50,
    }
    if expected is not None:
        provider["expectedWeight"] = expected
    provider.update(fields.pop("provider", {}))
    return Metric.model_validate({"name": "exposure", **fields, "provider": {"exposure": provider}})


def look(current: AnalysisRun, seconds: float, answers: list[Share | str]) -> tuple[AnalysisRun, RunPlan]:
    now = at(seconds)
    first = plan_run(current, [], now)
    done = []
    for request in first.requests:
        answer = answers.pop(0)
        done.append(outcome(request, error=answer) if isinstance(answer, str) else outcome(request, answer))
    second = plan_run(with_status(current, first.status), done, now)
    return with_status(current, second.status), second


def test_the_first_look_waits_one_window_and_reads_both_counters_over_it() -> None:
    current = with_status(run(exposure_metric()), plan_run(run(exposure_metric()), [], T0).status)
    assert plan_run(current, [], at(19)).requests == ()
    (request,) = plan_run(current, [], at(20)).requests
    query = request.query
    assert isinstance(query, ShareQuery)
    assert query.canary == 'sum(increase(requests{service="demo-canary"}[20s])) or vector(0)'
    assert query.total == 'sum(increase(requests{service=~"demo(-canary)?"}[20s]))'
    assert query.time == at(20)


@pytest.mark.parametrize(
    ("share", "phase", "text"),
    [
        (
            Share(100, 500),
            AnalysisPhase.SUCCESSFUL,
            "canary 20.0% (100 of 500 requests in 20s), intended 20% +- 5",
        ),
        (Share(124, 500), AnalysisPhase.SUCCESSFUL, "canary 24.8%"),
        (Share(0, 500), AnalysisPhase.INCONCLUSIVE, "observed split differs from the step's: canary 0.0%"),
        (Share(130, 500), AnalysisPhase.INCONCLUSIVE, "canary 26.0%"),
        (Share(2, 20), AnalysisPhase.ERROR, "only 20 requests through the gateway in 20s"),
        (Share(600, 500), AnalysisPhase.ERROR, "more canary requests (600) than in total (500)"),
        (Share(float("nan"), 500), AnalysisPhase.ERROR, "NaN"),
    ],
)
def test_one_look(share: Share, phase: AnalysisPhase, text: str) -> None:
    started = with_status(run(exposure_metric()), plan_run(run(exposure_metric()), [], T0).status)
    current, _ = look(started, 20, [share])
    (measurement,) = current.status.metric_results[0].measurements
    assert measurement.phase == phase
    assert text in f"{measurement.value} {measurement.message}"


def test_a_mismatch_holds_and_looks_again_until_the_split_is_right() -> None:
    current = with_status(run(exposure_metric()), plan_run(run(exposure_metric()), [], T0).status)
    for seconds in (20, 40, 60):  # the gateway ignores the weight: the metric holds, never fails
        current, plan = look(current, seconds, [Share(0, 500)])
        assert plan.status.phase == AnalysisPhase.RUNNING
        assert current.status.metric_results[0].phase == AnalysisPhase.RUNNING
        assert plan.requeue_after == 20.0  # the window again (no interval given)
    current, plan = look(current, 80, [Share(99, 500)])
    assert plan.status.phase == AnalysisPhase.SUCCESSFUL
    assert current.status.metric_results[0].inconclusive == 3


def test_count_asks_for_that_many_looks_within_the_tolerance() -> None:
    metric = exposure_metric(interval="5s", count=2)
    current = with_status(run(metric), plan_run(run(metric), [], T0).status)
    current, plan = look(current, 20, [Share(100, 500)])
    assert plan.status.phase == AnalysisPhase.RUNNING
    assert plan.requeue_after == 5.0
    current, plan = look(current, 25, [Share(0, 500)])
    assert plan.status.phase == AnalysisPhase.RUNNING
    current, plan = look(current, 30, [Share(101, 500)])
    assert plan.status.phase == AnalysisPhase.SUCCESSFUL


def test_missing_data_ends_in_error_after_the_bounded_retries() -> None:
    current = with_status(run(exposure_metric()), plan_run(run(exposure_metric()), [], T0).status)
    seconds = 20.0
    for _ in range(5):
        current, plan = look(current, seconds, ["Prometheus at http://127.0.0.1:9090 unreachable"])
        seconds += 20
    assert plan.status.phase == AnalysisPhase.ERROR
    assert "consecutiveErrorLimit (4)" in plan.status.message


def test_a_step_without_a_weighted_share_has_nothing_to_compare() -> None:
    metric = exposure_metric(expected=None)
    current = with_status(run(metric), plan_run(run(metric), [], T0).status)
    current, plan = look(current, 20, [Share(0, 500)])
    assert plan.status.phase == AnalysisPhase.SUCCESSFUL
    assert "nothing to compare" in current.status.metric_results[0].measurements[0].message


@pytest.mark.parametrize(
    ("fields", "issue"),
    [
        (
            {"provider": {"tolerance": "150"}},
            "provider.exposure.tolerance: tolerance must be between 0 and 100",
        ),
        ({"provider": {"window": "0"}}, "provider.exposure.window: must be at least 1s"),
        ({"provider": {"minRequests": 0}}, "provider.exposure.minRequests: must be at least 1"),
        ({"provider": {"canary": " "}}, "provider.exposure.canary: must not be empty"),
        ({"successCondition": "result > 1"}, "successCondition: not used by measured exposure"),
    ],
)
def test_template_rules(fields: dict[str, Any], issue: str) -> None:
    metric = exposure_metric(**fields).model_dump(by_alias=True, exclude_none=True)
    found = [
        str(i) for i in validate_template_spec(AnalysisTemplateSpec.model_validate({"metrics": [metric]}))
    ]
    assert any(issue in text for text in found), found
