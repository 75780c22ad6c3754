"""The assessor: provider outcomes become measurements, measurements become metric and run phases.

What this module does, with Argo Rollouts' semantics where a metric is a threshold metric:
- ``threshold_measurement``: the conditions over ``result`` give Successful / Failed / Inconclusive (a
  failure condition that holds wins; with only a success condition, not meeting it is a failure; with
  both and neither holding, Inconclusive; with none, Successful). Missing data is never a success: a
  query error, an empty vector or a NaN/infinite value is an Error measurement.
- ``judge_measurement``: the judge's look (see ``graylane.analysis.judge``); Fail is Failed, Pass is
  Successful, Undecided and NoData are Inconclusive, a fetch error or inconsistent counts are Error.
- ``record``: counters (``count`` leaves errors out, ``consecutiveError`` resets on any other phase) and
  the retention limit.
- ``assess_metric``: threshold metrics fail when ``failed > failureLimit`` (-1: never), are Inconclusive
  when ``inconclusive > inconclusiveLimit``, in Error when ``consecutiveError > consecutiveErrorLimit``
  (bounded retries), Successful when ``count`` measurements were taken (or the run is terminating), else
  Running. Judge metrics follow their verdict instead of counting: the first Fail or Pass ends the metric,
  NoData at the last look is Inconclusive, and only the error limit applies as for threshold metrics.
- ``assess_run``: the worst phase of the metrics that decide (Failed > Error > Inconclusive > Successful)
  once all are complete, or as soon as one is unsuccessful (the run then stops measuring: terminating),
  with the message that names the metric, the reason and the evidence (value, condition, query).

What it must not do: schedule measurements (``planner``), fetch data, or read a clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from graylane.analysis.contract import Counts, Outcome, Samples, SamplesQuery, Value
from graylane.analysis.expr import ConditionError, compile_condition
from graylane.api.analysis import (
    DEFAULT_CONSECUTIVE_ERROR_LIMIT,
    DEFAULT_MEASUREMENT_RETENTION,
    AnalysisPhase,
    AnalysisRunSpec,
    JudgeMetric,
    JudgeReport,
    JudgeState,
    JudgeVerdict,
    Measurement,
    Metric,
    MetricResult,
    RunSummary,
    parse_decimal,
)

# The judge (and the statistics module under it) loads with the first judge metric: most controllers
# never run one, and its modules cost 0.8 MB of resident memory for the process' life (issue 14).
if TYPE_CHECKING:
    from graylane.analysis.judge.verdict import Judgement, Settings

__all__ = [
    "Limits",
    "RunAssessment",
    "assess_metric",
    "assess_run",
    "is_dry_run",
    "judge_measurement",
    "judge_settings",
    "limits",
    "measurement_of",
    "record",
    "retention",
    "threshold_measurement",
]

# Worse phases win when several metrics end (Argo's order).
_SEVERITY: Final = {
    AnalysisPhase.PENDING: 0,
    AnalysisPhase.RUNNING: 1,
    AnalysisPhase.SUCCESSFUL: 2,
    AnalysisPhase.INCONCLUSIVE: 3,
    AnalysisPhase.ERROR: 4,
    AnalysisPhase.FAILED: 5,
}
_UNSUCCESSFUL: Final = (AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE)
_JUDGE_PHASES: Final = {
    JudgeVerdict.FAIL: AnalysisPhase.FAILED,
    JudgeVerdict.PASS: AnalysisPhase.SUCCESSFUL,
    JudgeVerdict.UNDECIDED: AnalysisPhase.INCONCLUSIVE,
    JudgeVerdict.NO_DATA: AnalysisPhase.INCONCLUSIVE,
}
DEFAULT_MIN_REQUESTS: Final = 100
DEFAULT_MIN_SAMPLES: Final = 20


# --- limits ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    count: int | None  # None: measure until terminated
    failure: int  # -1: failures never fail the metric
    inconclusive: int
    consecutive_error: int


def _int_field(value: int | str | None, default: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"{name} must be a whole number after argument substitution, got {value!r}"
        ) from None


def limits(metric: Metric) -> Limits:
    """The metric's limits with Argo's defaults; ``ValueError`` for a value that is not a number."""
    count = _int_field(metric.count, 0, "count")
    effective: int | None = count if count > 0 else (None if metric.interval else 1)
    return Limits(
        count=effective,
        failure=_int_field(metric.failure_limit, 0, "failureLimit"),
        inconclusive=_int_field(metric.inconclusive_limit, 0, "inconclusiveLimit"),
        consecutive_error=_int_field(
            metric.consecutive_error_limit, DEFAULT_CONSECUTIVE_ERROR_LIMIT, "consecutiveErrorLimit"
        ),
    )


def _matches(pattern: str, name: str) -> bool:
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return pattern == name


def is_dry_run(spec: AnalysisRunSpec, name: str) -> bool:
    return any(_matches(entry.metric_name, name) for entry in spec.dry_run)


def retention(spec: AnalysisRunSpec, name: str) -> int:
    limit = next((e.limit for e in spec.measurement_retention if _matches(e.metric_name, name)), None)
    return max(1, limit) if limit is not None else DEFAULT_MEASUREMENT_RETENTION


# --- measurements ----------------------------------------------------------------------------------------


def _format(value: float) -> str:
    return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _format_value(value: float | tuple[float, ...]) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return _format(value)


def measurement_of(outcome: Outcome, phase: AnalysisPhase, value: str = "", message: str = "") -> Measurement:
    """A measurement of ``outcome`` with its evidence: the query as shown, and the window read."""
    metadata = {"query": outcome.request.shown_query} if outcome.request.shown_query else {}
    if outcome.request.window_start is not None:
        metadata["window"] = f"{_iso(outcome.request.window_start)}/{_iso(_end_of(outcome))}"
    return Measurement(
        phase=phase,
        message=message,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        value=value,
        metadata=metadata,
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _end_of(outcome: Outcome) -> datetime:
    query = outcome.request.query
    return query.end if isinstance(query, SamplesQuery) else query.time


def _missing_data(value: Value | None) -> str:
    if value is None:
        return "the query returned no value"
    if isinstance(value, tuple):
        if not value:
            return "the query returned no data (empty result): never a success on missing data"
        if not all(math.isfinite(v) for v in value):
            return f"the query returned {_format_value(value)}: NaN or infinite values are missing data"
        return ""
    if isinstance(value, float | int) and not math.isfinite(value):
        return f"the query returned {_format(float(value))}: NaN or infinite values are missing data"
    return ""


def threshold_measurement(metric: Metric, outcome: Outcome) -> Measurement:
    """A threshold metric's measurement from a provider outcome (see the module docstring)."""
    if outcome.error:
        return measurement_of(outcome, AnalysisPhase.ERROR, message=outcome.error)
    value = outcome.value
    missing = _missing_data(value)
    if missing or not isinstance(value, float | int | tuple):
        return measurement_of(outcome, AnalysisPhase.ERROR, message=missing or "unexpected value for a query")
    shown = _format_value(value)
    result: object = list(value) if isinstance(value, tuple) else value
    try:
        phase, reason = _evaluate(metric, result, shown)
    except ConditionError as err:
        return measurement_of(outcome, AnalysisPhase.ERROR, shown, f"condition could not be evaluated: {err}")
    return measurement_of(outcome, phase, shown, reason)


def _evaluate(metric: Metric, result: object, shown: str) -> tuple[AnalysisPhase, str]:
    success, failure = metric.success_condition, metric.failure_condition
    succeeded = compile_condition(success).evaluate(result) if success else None
    failed = compile_condition(failure).evaluate(result) if failure else None
    if failed:
        return AnalysisPhase.FAILED, f"value {shown} meets failureCondition {failure!r}"
    if succeeded is None and failed is None:
        return AnalysisPhase.SUCCESSFUL, ""
    if succeeded is False and failed is None:
        return AnalysisPhase.FAILED, f"value {shown} does not meet successCondition {success!r}"
    if succeeded is False and failed is False:
        return AnalysisPhase.INCONCLUSIVE, (
            f"value {shown} meets neither successCondition {success!r} nor failureCondition {failure!r}"
        )
    return AnalysisPhase.SUCCESSFUL, ""


def judge_settings(judge: JudgeMetric) -> Settings:
    """The judge's settings from the spec (``ValueError`` names a bad alpha or margin)."""
    from graylane.analysis.judge.verdict import Settings

    default_min = DEFAULT_MIN_REQUESTS if judge.counts is not None else DEFAULT_MIN_SAMPLES
    return Settings(
        alpha=parse_decimal(judge.alpha, low=1e-6, high=0.5, name="alpha"),
        margin=parse_decimal(judge.margin, low=0.0, high=10.0, name="margin"),
        sequential=judge.early_stop is not False,
        min_samples=judge.min_samples if judge.min_samples is not None else default_min,
        direction=judge.samples.direction if judge.samples is not None else Settings().direction,
    )


def judge_measurement(
    metric: Metric, state: JudgeState | None, outcome: Outcome
) -> tuple[Measurement, JudgeState | None]:
    """One look of the judge: the measurement with its report, and the state carried to the next look."""
    judge = metric.provider.judge
    if judge is None:
        raise ValueError(f"metric {metric.name!r} has no judge provider")
    if outcome.error:
        return measurement_of(outcome, AnalysisPhase.ERROR, message=outcome.error), state
    carried = state or JudgeState()
    try:
        judgement, new_state = _look(judge, carried, outcome)
    except ValueError as err:
        return measurement_of(outcome, AnalysisPhase.ERROR, message=str(err)), state
    request = outcome.request
    phase = _JUDGE_PHASES[judgement.verdict]
    measurement = measurement_of(outcome, phase, judgement.summary(), _judge_message(judgement, request.look))
    report = JudgeReport(
        verdict=judgement.verdict,
        look=request.look,
        final=request.final,
        sequential=judge.early_stop is not False,
        canary=judgement.canary,
        stable=judgement.stable,
        tests=list(judgement.tests),
        effects=list(judgement.effects),
    )
    return measurement.model_copy(update={"judge": report}), new_state


def _look(judge: JudgeMetric, state: JudgeState, outcome: Outcome) -> tuple[Judgement, JudgeState]:
    from graylane.analysis.judge.counts import CountLook
    from graylane.analysis.judge.verdict import Judgement, judge_counts, judge_samples

    settings = judge_settings(judge)
    request, value = outcome.request, outcome.value
    window_end = _end_of(outcome)
    if isinstance(value, Counts):
        looks = [*state.looks, list(_count_look(value))]
        data = [CountLook(*look) for look in looks]
        judgement = judge_counts(data, settings, final=request.final, max_log_lr=state.max_log_lr)
        return judgement, JudgeState(
            looks=looks, window_end=window_end, max_log_lr=dict(judgement.max_log_lr)
        )
    if isinstance(value, Samples):
        if settings.margin > 0 and min((*value.canary, *value.stable), default=1.0) <= 0:
            raise ValueError("a margin is relative: it needs positive samples, and some are zero or negative")
        judgement = judge_samples(
            value.canary, value.stable, settings, final=request.final, max_log_lr=state.max_log_lr
        )
        canary = judgement.canary.model_copy(update={"dropped": value.dropped_canary})
        stable = judgement.stable.model_copy(update={"dropped": value.dropped_stable})
        judgement = Judgement(
            judgement.verdict, judgement.tests, canary, stable, judgement.effects, judgement.max_log_lr
        )
        return judgement, JudgeState(window_end=window_end, max_log_lr=dict(judgement.max_log_lr))
    raise ValueError("the judge received no counts or samples")


def _count_look(value: Counts) -> tuple[int, int, int, int]:
    numbers = (value.canary_events, value.canary_total, value.stable_events, value.stable_total)
    if not all(math.isfinite(n) for n in numbers):
        raise ValueError("a counter query returned NaN or an infinite value: missing data")
    # increase() extrapolates to the window's edges, so counts arrive as floats; round to whole events.
    x, a, y, b = (round(n) for n in numbers)
    if min(x, a, y, b) < 0:
        raise ValueError(f"negative counts (canary {x}/{a}, stable {y}/{b}): check the queries")
    if x > a or y > b:
        raise ValueError(
            f"more events than total (canary {x}/{a}, stable {y}/{b}): the events and total queries "
            "must count the same requests"
        )
    return x, a, y, b


def _judge_message(judgement: Judgement, look: int) -> str:
    if judgement.verdict is JudgeVerdict.FAIL:
        return f"regression at look {look}: {judgement.summary()}"
    if judgement.verdict is JudgeVerdict.NO_DATA:
        return f"too little data at the last look ({look}) for a verdict: {judgement.summary()}"
    return ""


# --- recording and assessing -----------------------------------------------------------------------------


def record(result: MetricResult, measurement: Measurement, keep: int) -> MetricResult:
    """``result`` with ``measurement`` appended and counted; only the last ``keep`` measurements kept."""
    counters = {
        "count": result.count,
        "successful": result.successful,
        "failed": result.failed,
        "inconclusive": result.inconclusive,
        "error": result.error,
        "consecutive_error": result.consecutive_error,
    }
    if measurement.phase is AnalysisPhase.ERROR:
        counters["error"] += 1
        counters["consecutive_error"] += 1
    else:
        counters["count"] += 1
        counters[measurement.phase.value.lower()] += 1
        counters["consecutive_error"] = 0
    measurements = [*result.measurements, measurement][-keep:]
    return result.model_copy(update={**counters, "measurements": measurements})


def assess_metric(metric: Metric, result: MetricResult, terminating: bool) -> tuple[AnalysisPhase, str]:
    """The metric's phase and, when it ended unsuccessfully, why (with the evidence)."""
    if result.phase.completed:
        return result.phase, result.message
    if not result.measurements:
        if terminating:
            return AnalysisPhase.SUCCESSFUL, "run terminated before the first measurement"
        return AnalysisPhase.PENDING, ""
    bounds = limits(metric)
    if result.consecutive_error > bounds.consecutive_error:
        reason = (
            f"consecutiveErrors ({result.consecutive_error}) > "
            f"consecutiveErrorLimit ({bounds.consecutive_error})"
        )
        return AnalysisPhase.ERROR, _with_evidence(reason, result.measurements, AnalysisPhase.ERROR)
    if metric.provider.judge is not None:
        return _assess_judge(result, terminating)
    if metric.provider.exposure is not None:
        return _assess_exposure(result, bounds, terminating)
    if bounds.failure >= 0 and result.failed > bounds.failure:
        reason = f"failed ({result.failed}) > failureLimit ({bounds.failure})"
        return AnalysisPhase.FAILED, _with_evidence(reason, result.measurements, AnalysisPhase.FAILED)
    if result.inconclusive > bounds.inconclusive:
        reason = f"inconclusive ({result.inconclusive}) > inconclusiveLimit ({bounds.inconclusive})"
        return AnalysisPhase.INCONCLUSIVE, _with_evidence(
            reason, result.measurements, AnalysisPhase.INCONCLUSIVE
        )
    if bounds.count is not None and result.count >= bounds.count:
        return AnalysisPhase.SUCCESSFUL, ""
    return (AnalysisPhase.SUCCESSFUL, "") if terminating else (AnalysisPhase.RUNNING, "")


def _assess_judge(result: MetricResult, terminating: bool) -> tuple[AnalysisPhase, str]:
    last = next((m for m in reversed(result.measurements) if m.judge is not None), None)
    verdict = last.judge.verdict if last is not None and last.judge is not None else JudgeVerdict.UNDECIDED
    if verdict is JudgeVerdict.FAIL:
        return AnalysisPhase.FAILED, f"judge verdict Fail: {last.message if last else ''}"
    if verdict is JudgeVerdict.PASS:
        return AnalysisPhase.SUCCESSFUL, ""
    if verdict is JudgeVerdict.NO_DATA:
        return AnalysisPhase.INCONCLUSIVE, f"judge verdict NoData: {last.message if last else ''}"
    return (AnalysisPhase.SUCCESSFUL, "") if terminating else (AnalysisPhase.RUNNING, "")


def _assess_exposure(result: MetricResult, bounds: Limits, terminating: bool) -> tuple[AnalysisPhase, str]:
    """Measured exposure holds rather than fails: enough measurements within the tolerance end it
    Successful; one outside it (Inconclusive) only keeps the metric Running, measured again."""
    if result.successful >= (bounds.count or 1):
        return AnalysisPhase.SUCCESSFUL, ""
    return (AnalysisPhase.SUCCESSFUL, "") if terminating else (AnalysisPhase.RUNNING, "")


def _with_evidence(reason: str, measurements: Sequence[Measurement], phase: AnalysisPhase) -> str:
    last = next((m for m in reversed(measurements) if m.phase is phase), None)
    if last is None:
        return reason
    evidence = last.message or (f"value {last.value}" if last.value else "")
    query = last.metadata.get("query", "")
    parts = [reason, evidence, f"query: {query}" if query else ""]
    return "; ".join(part for part in parts if part)


@dataclass(frozen=True)
class RunAssessment:
    phase: AnalysisPhase
    message: str
    run_summary: RunSummary
    dry_run_summary: RunSummary | None
    terminating: bool


def is_terminating(spec: AnalysisRunSpec, results: Sequence[MetricResult]) -> bool:
    """Stop measuring when asked to, or once a metric that decides ended unsuccessfully."""
    return spec.terminate or any(r.phase in _UNSUCCESSFUL and not r.dry_run for r in results)


def assess_run(spec: AnalysisRunSpec, results: Sequence[MetricResult]) -> RunAssessment:
    """The run's phase from its metric results (which must already be assessed)."""
    terminating = is_terminating(spec, results)
    by_name = {r.name: r for r in results}
    worst: AnalysisPhase | None = None
    message = ""
    completed = True
    summaries = {False: RunSummary(), True: RunSummary()}
    for metric in spec.metrics:
        result = by_name.get(metric.name)
        phase = result.phase if result is not None else AnalysisPhase.PENDING
        dry = is_dry_run(spec, metric.name)
        summaries[dry] = _count(summaries[dry], phase)
        if not phase.completed:
            completed = False
        elif not dry and (worst is None or _SEVERITY[phase] > _SEVERITY[worst]):
            worst = phase
            if result is not None and result.message and phase in _UNSUCCESSFUL:
                message = f'Metric "{metric.name}" assessed {phase} due to {result.message}'
    if spec.terminate and not message:
        message = "run terminated"
    done = terminating or completed
    phase = (worst or AnalysisPhase.SUCCESSFUL) if done else AnalysisPhase.RUNNING
    dry_summary = summaries[True] if summaries[True].count else None
    return RunAssessment(phase, message, summaries[False], dry_summary, terminating)


def _count(summary: RunSummary, phase: AnalysisPhase) -> RunSummary:
    update = {"count": summary.count + 1}
    if phase.completed:
        field = phase.value.lower()
        update[field] = getattr(summary, field) + 1
    return summary.model_copy(update=update)
