"""The AnalysisRun planner: what is due when, outcomes folded in, verdicts, requeues and events."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.analysis.contract import Counts, CountsQuery, InstantQuery, Samples, SamplesQuery
from graylane.analysis.planner import RunPlan, plan_run, with_status
from graylane.api.analysis import AnalysisPhase, AnalysisRun, JudgeVerdict, SamplesJudge

from .builders import T0, at, counts_judge_metric, outcome, prometheus_metric, run


def step(current: AnalysisRun, now_seconds: float, values: list[Any]) -> tuple[AnalysisRun, RunPlan]:
    """One controller pass: plan, answer each request with the next value (a string: an error), re-plan."""
    now = at(now_seconds)
    first = plan_run(current, [], now)
    answered = []
    for request in first.requests:
        value = values.pop(0)
        answered.append(outcome(request, error=value) if isinstance(value, str) else outcome(request, value))
    second = plan_run(with_status(current, first.status), answered, now)
    return with_status(current, second.status), second


def start(current: AnalysisRun) -> AnalysisRun:
    """The run as its first pass at T0 leaves it (startedAt set)."""
    return with_status(current, plan_run(current, [], T0).status)


def test_a_fresh_run_starts_now_and_asks_for_the_first_measurement() -> None:
    plan = plan_run(run(prometheus_metric()), [], T0)

    assert plan.status.started_at == T0
    assert plan.status.phase == AnalysisPhase.RUNNING
    assert len(plan.requests) == 1
    query = plan.requests[0].query
    assert isinstance(query, InstantQuery)
    assert (query.query, query.time, query.timeout) == ("sum(rate(errors[1m]))", T0, 10.0)


def test_initial_delay_defers_the_first_measurement_and_requeues_for_it() -> None:
    plan = plan_run(run(prometheus_metric(initialDelay="30s")), [], T0)

    assert plan.requests == ()
    assert plan.requeue_after == 30.0


def test_a_single_measurement_decides_a_metric_without_interval() -> None:
    current, plan = step(run(prometheus_metric()), 0, [(0.01,)])

    assert plan.status.phase == AnalysisPhase.SUCCESSFUL
    assert plan.requeue_after is None
    assert plan.events[-1].reason == "Complete"
    assert current.status.metric_results[0].measurements[0].value == "[0.01]"


def test_interval_and_count_schedule_measurements_then_succeed() -> None:
    current = run(prometheus_metric(interval="10s", count=3))
    current, plan = step(current, 0, [(0.01,)])
    assert plan.requeue_after == 10.0

    current, plan = step(current, 5, [])  # not due yet
    assert plan.requests == ()
    assert plan.requeue_after == 5.0

    current, plan = step(current, 10, [(0.02,)])
    current, plan = step(current, 20, [(0.03,)])

    assert plan.status.phase == AnalysisPhase.SUCCESSFUL
    assert plan.status.metric_results[0].count == 3


def test_a_failing_measurement_rolls_back_with_the_evidence_in_the_message() -> None:
    _current, plan = step(run(prometheus_metric(interval="10s", count=5)), 0, [(0.1,)])

    assert plan.status.phase == AnalysisPhase.FAILED
    assert plan.status.message == (
        'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0); value [0.1] does not meet '
        "successCondition 'result[0] < 0.05'; query: sum(rate(errors[1m]))"
    )
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "Failed"), ("Warning", "Failed")]
    assert plan.requests == ()


def test_prometheus_down_retries_a_bounded_number_of_times_then_errors_never_succeeds() -> None:
    current = run(prometheus_metric(interval="10s", count=2))
    phases = []
    for n in range(6):
        current, plan = step(current, 10 * n, ["Prometheus unreachable: connection refused"])
        phases.append(plan.status.phase)

    assert phases[:4] == [AnalysisPhase.RUNNING] * 4
    assert phases[4] == AnalysisPhase.ERROR  # the 5th error in a row exceeds consecutiveErrorLimit 4
    assert "consecutiveErrors (5) > consecutiveErrorLimit (4)" in current.status.message
    assert "unreachable" in current.status.message
    assert AnalysisPhase.SUCCESSFUL not in phases


def test_an_error_without_interval_is_retried_after_ten_seconds() -> None:
    _current, plan = step(run(prometheus_metric()), 0, ["timeout"])

    assert plan.status.phase == AnalysisPhase.RUNNING
    assert plan.requeue_after == 10.0


def test_a_failing_metric_stops_the_others() -> None:
    current = run(
        prometheus_metric("a", interval="10s", count=5), prometheus_metric("b", interval="10s", count=5)
    )

    current, plan = step(current, 0, [(0.1,), (0.01,)])

    assert plan.status.phase == AnalysisPhase.FAILED
    assert plan_run(current, [], at(100)).requests == ()


def test_terminate_ends_an_indefinite_metric_successfully() -> None:
    current, _ = step(run(prometheus_metric(interval="10s")), 0, [(0.01,)])
    terminated = current.model_copy(update={"spec": current.spec.model_copy(update={"terminate": True})})

    plan = plan_run(terminated, [], at(30))

    assert plan.status.phase == AnalysisPhase.SUCCESSFUL
    assert plan.status.message == "run terminated"
    assert plan.requests == ()


def test_a_completed_run_is_left_alone() -> None:
    current, _ = step(run(prometheus_metric()), 0, [(0.01,)])

    plan = plan_run(current, [], at(60))

    assert plan.status == current.status
    assert plan.requests == ()
    assert plan.events == ()


def test_an_invalid_spec_is_an_error_run_naming_the_field() -> None:
    plan = plan_run(run(prometheus_metric(count=3)), [], T0)

    assert plan.status.phase == AnalysisPhase.ERROR
    assert "spec.metrics[0].interval: required when count is greater than 1" in plan.status.message


def test_outcomes_for_unknown_or_finished_metrics_are_ignored() -> None:
    current, _ = step(run(prometheus_metric()), 0, [(0.01,)])
    stray = outcome(plan_run(run(prometheus_metric("other")), [], T0).requests[0], (0.5,))

    assert plan_run(current, [stray], at(10)).status == current.status


def test_secret_arguments_reach_the_query_but_not_the_status() -> None:
    metric = prometheus_metric(
        provider={"prometheus": {"address": "http://127.0.0.1:9090", "query": 'up{token="{{args.token}}"}'}}
    )
    secret_run = run(
        metric, args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    )

    plan = plan_run(secret_run, [], T0, secrets={"token": "hunter2"})
    request = plan.requests[0]

    assert isinstance(request.query, InstantQuery)
    assert request.query.query == 'up{token="hunter2"}'
    assert request.shown_query == 'up{token="*****"}'
    second = plan_run(with_status(secret_run, plan.status), [outcome(request, (0.01,))], T0)
    assert "hunter2" not in second.status.model_dump_json()


# --- the judge -------------------------------------------------------------------------------------------


def test_the_judge_reads_windows_back_to_back_and_carries_its_looks() -> None:
    current = run(counts_judge_metric())
    plan = plan_run(current, [], T0)
    assert plan.requests == ()  # the first look needs one interval of data
    assert plan.requeue_after == 30.0
    current = with_status(current, plan.status)

    current, plan = step(current, 30, [Counts(5, 500, 20, 2000)])
    result = plan.status.metric_results[0]
    assert result.judge is not None
    assert result.judge.looks == [[5, 500, 20, 2000]]
    assert result.judge.window_end == at(30)
    assert result.measurements[-1].judge is not None
    assert result.measurements[-1].judge.verdict is JudgeVerdict.UNDECIDED
    assert result.measurements[-1].metadata["window"] == "2026-12-04T10:00:00Z/2026-12-04T10:00:30Z"

    second = plan_run(current, [], at(60)).requests[0]
    assert isinstance(second.query, CountsQuery)
    assert second.query.canary_events == 'sum(increase(req{v="2",code="500"}[30s]))'
    assert second.look == 2
    assert second.window_start == at(30)


def test_the_judge_fails_a_canary_with_ten_percent_errors_at_the_first_look() -> None:
    _current, plan = step(start(run(counts_judge_metric())), 30, [Counts(12, 120, 0, 480)])

    assert plan.status.phase == AnalysisPhase.FAILED
    assert (
        'Metric "judge" assessed Failed due to judge verdict Fail: regression at look 1'
        in plan.status.message
    )
    report = plan.status.metric_results[0].measurements[-1].judge
    assert report is not None
    assert report.tests[0].rejected


def test_the_judge_passes_equal_rates_at_the_last_look() -> None:
    current = start(run(counts_judge_metric()))
    for look in range(1, 5):
        current, plan = step(current, 30 * look, [Counts(5, 500, 20, 2000)])

    assert plan.status.phase == AnalysisPhase.SUCCESSFUL
    report = plan.status.metric_results[0].measurements[-1].judge
    assert report is not None
    assert report.final
    assert report.verdict is JudgeVerdict.PASS
    assert report.canary.total == 2000


def test_the_judge_without_traffic_is_inconclusive_at_the_last_look() -> None:
    current = start(run(counts_judge_metric(minSamples=100)))
    for look in range(1, 5):
        current, plan = step(current, 30 * look, [Counts(0, 3, 0, 10)])

    assert plan.status.phase == AnalysisPhase.INCONCLUSIVE
    assert "judge verdict NoData" in plan.status.message


def test_the_samples_judge_reads_the_whole_window_since_the_start() -> None:
    metric = counts_judge_metric()
    judge = metric.provider.judge
    assert judge is not None
    samples = judge.model_copy(
        update={"counts": None, "samples": {"canary": "lat{v='2'}", "stable": "lat{v='1'}", "step": "5s"}}
    )

    samples = judge.model_copy(
        update={"counts": None, "samples": SamplesJudge(canary="lat{v='2'}", stable="lat{v='1'}", step="5s")}
    )
    metric = metric.model_copy(update={"provider": metric.provider.model_copy(update={"judge": samples})})
    current = start(run(metric))

    current, plan = step(current, 30, [Samples(tuple(range(100, 130)), tuple(range(100, 130)))])
    request = plan_run(current, [], at(60)).requests[0]

    assert isinstance(request.query, SamplesQuery)
    assert (request.query.start, request.query.end, request.query.step) == (T0, at(60), 5.0)
    report = plan.status.metric_results[0].measurements[-1].judge
    assert report is not None
    assert report.canary.samples == 30


@pytest.mark.parametrize("value", [Counts(float("nan"), 1, 1, 1), Counts(-1, 10, 1, 10)])
def test_bad_counts_are_error_measurements(value: Counts) -> None:
    _, plan = step(start(run(counts_judge_metric())), 30, [value])

    measurement = plan.status.metric_results[0].measurements[-1]
    assert measurement.phase is AnalysisPhase.ERROR
    assert plan.status.phase == AnalysisPhase.RUNNING


def test_an_unknown_phase_in_status_is_reassessed_not_a_crash() -> None:
    current = run(prometheus_metric())
    current = with_status(current, current.status.model_copy(update={"phase": "Bogus"}))

    plan = plan_run(current, [], T0)

    assert plan.status.phase == AnalysisPhase.RUNNING
    assert len(plan.requests) == 1
