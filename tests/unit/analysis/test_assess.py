"""The assessor: measurements from outcomes, and Argo's limit semantics for metrics and runs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from graylane.analysis import assess
from graylane.analysis.contract import Counts, InstantQuery, MeasurementRequest, Outcome
from graylane.api.analysis import AnalysisPhase, AnalysisRunSpec, Measurement, MetricResult

from .builders import ADDRESS, T0, prometheus_metric

REQUEST = MeasurementRequest(
    "error-rate", InstantQuery(ADDRESS, "q", T0, 10.0), shown_query="sum(rate(errors[1m]))"
)


def measure(value: Any = None, error: str = "", **metric: Any) -> Measurement:
    return assess.threshold_measurement(prometheus_metric(**metric), Outcome(REQUEST, T0, T0, value, error))


# --- threshold measurements ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "value", "phase"),
    [
        ({"successCondition": "result[0] < 0.05"}, (0.01,), AnalysisPhase.SUCCESSFUL),
        ({"successCondition": "result[0] < 0.05"}, (0.1,), AnalysisPhase.FAILED),
        ({"successCondition": "", "failureCondition": "result[0] >= 0.05"}, (0.1,), AnalysisPhase.FAILED),
        (
            {"successCondition": "", "failureCondition": "result[0] >= 0.05"},
            (0.01,),
            AnalysisPhase.SUCCESSFUL,
        ),
        ({"failureCondition": "result[0] >= 0.5"}, (0.1,), AnalysisPhase.INCONCLUSIVE),  # neither holds
        (
            {"failureCondition": "result[0] >= 0.001"},
            (0.01,),
            AnalysisPhase.FAILED,
        ),  # both hold: failure wins
        ({"successCondition": ""}, (0.3,), AnalysisPhase.SUCCESSFUL),  # no condition: recorded
        ({"successCondition": "result < 1"}, 0.5, AnalysisPhase.SUCCESSFUL),  # a scalar
    ],
)
def test_conditions_follow_argo(conditions: dict[str, str], value: Any, phase: AnalysisPhase) -> None:
    assert measure(value, **conditions).phase is phase


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ((), "", "no data"),
        ((math.nan,), "", "NaN or infinite"),
        (math.inf, "", "NaN or infinite"),
        ((0.01, math.nan), "", "NaN or infinite"),
        (None, "Prometheus unreachable: connection refused", "unreachable"),
    ],
)
def test_missing_data_is_an_error_never_a_success(value: Any, error: str, message: str) -> None:
    # "len(result) == 0" would hold on an empty vector: the assessor stops before any condition runs.
    measurement = measure(value, error, successCondition="len(result) == 0 || result[0] < 0.05")

    assert measurement.phase is AnalysisPhase.ERROR
    assert message in measurement.message


def test_a_condition_that_cannot_be_evaluated_is_an_error() -> None:
    measurement = measure((0.1,), successCondition="result[3] < 1")

    assert measurement.phase is AnalysisPhase.ERROR
    assert "index 3 out of range" in measurement.message


def test_a_failed_measurement_carries_value_condition_and_query() -> None:
    measurement = measure((0.1,))

    assert measurement.value == "[0.1]"
    assert measurement.message == "value [0.1] does not meet successCondition 'result[0] < 0.05'"
    assert measurement.metadata == {"query": "sum(rate(errors[1m]))"}
    assert measurement.started_at == T0
    assert measurement.finished_at == T0


# --- recording -------------------------------------------------------------------------------------------


def result_of(*phases: AnalysisPhase, keep: int = 100) -> MetricResult:
    result = MetricResult(name="error-rate", phase=AnalysisPhase.RUNNING)
    for phase in phases:
        result = assess.record(result, Measurement(phase=phase, message=f"m-{phase}"), keep)
    return result


def test_record_counts_like_argo() -> None:
    OK, FAIL, INC, ERR = (
        AnalysisPhase.SUCCESSFUL,
        AnalysisPhase.FAILED,
        AnalysisPhase.INCONCLUSIVE,
        AnalysisPhase.ERROR,
    )
    result = result_of(OK, ERR, ERR, FAIL, INC, ERR)

    assert (result.count, result.successful, result.failed, result.inconclusive) == (3, 1, 1, 1)
    assert (result.error, result.consecutive_error) == (3, 1)


def test_retention_keeps_the_latest_but_counts_all() -> None:
    result = result_of(*[AnalysisPhase.SUCCESSFUL] * 5, keep=2)

    assert len(result.measurements) == 2
    assert result.count == 5


# --- metric assessment -----------------------------------------------------------------------------------

OK, FAIL, INC, ERR = (
    AnalysisPhase.SUCCESSFUL,
    AnalysisPhase.FAILED,
    AnalysisPhase.INCONCLUSIVE,
    AnalysisPhase.ERROR,
)


@pytest.mark.parametrize(
    ("fields", "phases", "terminating", "expected"),
    [
        ({}, (), False, AnalysisPhase.PENDING),
        ({}, (), True, AnalysisPhase.SUCCESSFUL),
        ({}, (OK,), False, AnalysisPhase.SUCCESSFUL),  # no interval, no count: one measurement
        ({}, (FAIL,), False, AnalysisPhase.FAILED),  # failureLimit 0
        ({"interval": "10s", "count": 3, "failureLimit": 1}, (FAIL, OK), False, AnalysisPhase.RUNNING),
        ({"interval": "10s", "count": 3, "failureLimit": 1}, (FAIL, OK, FAIL), False, AnalysisPhase.FAILED),
        ({"interval": "10s", "count": 3, "failureLimit": 1}, (FAIL, OK, OK), False, AnalysisPhase.SUCCESSFUL),
        (
            {"interval": "10s", "count": 3, "failureLimit": -1},
            (FAIL, FAIL, FAIL),
            False,
            AnalysisPhase.SUCCESSFUL,
        ),
        ({"interval": "10s", "count": 3}, (INC,), False, AnalysisPhase.INCONCLUSIVE),
        ({"interval": "10s", "count": 3, "inconclusiveLimit": 1}, (INC, OK), False, AnalysisPhase.RUNNING),
        (
            {"interval": "10s", "count": 3},
            (ERR, ERR, ERR, ERR),
            False,
            AnalysisPhase.RUNNING,
        ),  # 4 in a row allowed
        (
            {"interval": "10s", "count": 3},
            (ERR, ERR, ERR, ERR, ERR),
            False,
            AnalysisPhase.ERROR,
        ),  # the 5th: Error
        ({"interval": "10s", "count": 3, "consecutiveErrorLimit": 0}, (ERR,), False, AnalysisPhase.ERROR),
        (
            {"interval": "10s", "count": 2},
            (ERR, OK, ERR, OK),
            False,
            AnalysisPhase.SUCCESSFUL,
        ),  # errors not counted
        ({"interval": "10s"}, (OK, OK, OK), False, AnalysisPhase.RUNNING),  # indefinite
        ({"interval": "10s"}, (OK, OK, OK), True, AnalysisPhase.SUCCESSFUL),  # indefinite, terminated
    ],
)
def test_metric_phases_follow_argo(
    fields: dict[str, Any], phases: tuple[AnalysisPhase, ...], terminating: bool, expected: AnalysisPhase
) -> None:
    metric = prometheus_metric(**fields)

    assert assess.assess_metric(metric, result_of(*phases), terminating)[0] is expected


def test_errors_only_can_never_complete_successfully() -> None:
    metric = prometheus_metric(interval="10s", count=1)

    phases = [assess.assess_metric(metric, result_of(*[ERR] * n), False)[0] for n in range(1, 8)]

    assert AnalysisPhase.SUCCESSFUL not in phases
    assert phases[-1] is AnalysisPhase.ERROR


def test_the_failure_message_names_limit_value_condition_and_query() -> None:
    metric = prometheus_metric()
    result = assess.record(MetricResult(name="error-rate", phase=AnalysisPhase.RUNNING), measure((0.1,)), 10)

    phase, message = assess.assess_metric(metric, result, False)

    assert phase is AnalysisPhase.FAILED
    assert message == (
        "failed (1) > failureLimit (0); value [0.1] does not meet successCondition 'result[0] < 0.05'; "
        "query: sum(rate(errors[1m]))"
    )


def test_limits_refuse_a_value_that_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="failureLimit must be a whole number"):
        assess.limits(prometheus_metric(failureLimit="{{args.x}}"))


# --- run assessment --------------------------------------------------------------------------------------


def spec_of(*names: str, **fields: Any) -> AnalysisRunSpec:
    metrics = [prometheus_metric(name).model_dump(by_alias=True, exclude_none=True) for name in names]
    return AnalysisRunSpec.model_validate({"metrics": metrics, **fields})


def done(name: str, phase: AnalysisPhase, message: str = "", dry: bool = False) -> MetricResult:
    return MetricResult(
        name=name, phase=phase, message=message, dry_run=dry, measurements=[Measurement(phase=phase)]
    )


def test_the_worst_metric_decides_the_run() -> None:
    spec = spec_of("a", "b", "c")
    results = [done("a", OK), done("b", INC, "inconclusive (1) > inconclusiveLimit (0)"), done("c", ERR, "x")]

    verdict = assess.assess_run(spec, results)

    assert verdict.phase is AnalysisPhase.ERROR
    assert verdict.message == 'Metric "c" assessed Error due to x'
    assert (verdict.run_summary.count, verdict.run_summary.successful, verdict.run_summary.error) == (3, 1, 1)


def test_a_failure_ends_the_run_while_others_still_run() -> None:
    spec = spec_of("a", "b")
    verdict = assess.assess_run(
        spec,
        [
            done("a", FAIL, "failed (1) > failureLimit (0)"),
            MetricResult(name="b", phase=AnalysisPhase.RUNNING),
        ],
    )

    assert verdict.phase is AnalysisPhase.FAILED
    assert verdict.terminating
    assert verdict.message.startswith('Metric "a" assessed Failed due to failed (1)')


def test_dry_run_metrics_never_decide() -> None:
    spec = spec_of("a", "b", dryRun=[{"metricName": "b"}])

    verdict = assess.assess_run(spec, [done("a", OK), done("b", FAIL, "failed", dry=True)])

    assert verdict.phase is AnalysisPhase.SUCCESSFUL
    assert verdict.dry_run_summary is not None
    assert verdict.dry_run_summary.failed == 1
    assert verdict.run_summary.count == 1


def test_running_until_every_metric_is_done() -> None:
    spec = spec_of("a", "b")

    assert assess.assess_run(spec, [done("a", OK)]).phase is AnalysisPhase.RUNNING


def test_dry_run_and_retention_match_whole_names_by_regular_expression() -> None:
    spec = spec_of(
        "error-rate",
        "latency",
        dryRun=[{"metricName": "lat.*"}],
        measurementRetention=[{"metricName": "error", "limit": 3}],
    )

    assert assess.is_dry_run(spec, "latency")
    assert not assess.is_dry_run(spec, "error-rate")
    assert assess.retention(spec, "error-rate") == 100  # "error" is not the whole name
    assert assess.retention(spec, "error") == 3


# --- judge measurements ----------------------------------------------------------------------------------


def test_judge_counts_that_do_not_add_up_are_an_error() -> None:
    from graylane.analysis.contract import CountsQuery

    from .builders import counts_judge_metric

    metric = counts_judge_metric()
    request = MeasurementRequest("judge", CountsQuery(ADDRESS, "a", "b", "c", "d", T0, 10.0), look=1)

    measurement, state = assess.judge_measurement(
        metric, None, Outcome(request, T0, T0, Counts(30, 10, 1, 100))
    )

    assert measurement.phase is AnalysisPhase.ERROR
    assert "more events than total" in measurement.message
    assert state is None
