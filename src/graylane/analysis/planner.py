"""The AnalysisRun planner: observed run + outcomes of the queries just made + ``now`` -> the next plan.

What this module does: ``plan_run`` folds the providers' outcomes into measurements (via ``assess``),
re-assesses every metric and the run, and says which measurements are due now (``requests``), when the
next one falls due (``requeue_after``) and which Events to record. The controller is a thin loop:

    plan = plan_run(run, [], now)                      # what is due?
    outcomes = [await provider.measure(r) for r in plan.requests]
    plan = plan_run(with_status(run, plan.status), outcomes, now)
    patch status := plan.status; requeue after plan.requeue_after

Scheduling follows Argo Rollouts: the first measurement at ``startedAt + initialDelay``, the next one
``interval`` after the last finished (10 s after an Error when there is no interval), none once ``count``
measurements were taken, the metric ended, or the run is terminating. A judge look needs a window of
data, so its first look comes one ``interval`` after the data start (``startedAt + initialDelay``); the
counts judge reads the window since its previous look, the samples judge the whole window since the
data start. Arguments whose values are secrets are substituted only into the requests; status records
the query with them masked.

What it must not do: call providers, read a clock, or talk to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from graylane.analysis import assess, exposure
from graylane.analysis.contract import CountsQuery, InstantQuery, MeasurementRequest, Outcome, SamplesQuery
from graylane.analysis.validation import validate_run_spec
from graylane.api.analysis import (
    AnalysisPhase,
    AnalysisRun,
    AnalysisRunSpec,
    AnalysisRunStatus,
    JudgeMetric,
    Metric,
    MetricResult,
    parse_duration,
)

__all__ = [
    "DEFAULT_ERROR_RETRY",
    "DEFAULT_TIMEOUT",
    "RunEvent",
    "RunPlan",
    "plan_run",
    "substitute",
    "with_status",
]

DEFAULT_ERROR_RETRY: Final = 10.0  # seconds, Argo's DefaultErrorRetryInterval
DEFAULT_TIMEOUT: Final = 10.0
MASK: Final = "*****"


@dataclass(frozen=True)
class RunEvent:
    """An Event to record on the AnalysisRun (Argo's reasons: Complete / Failed)."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class RunPlan:
    status: AnalysisRunStatus
    requests: tuple[MeasurementRequest, ...] = ()
    requeue_after: float | None = (
        None  # seconds; None: nothing scheduled (the run ended, or waits for events)
    )
    events: tuple[RunEvent, ...] = field(default_factory=tuple)


def with_status(run: AnalysisRun, status: AnalysisRunStatus) -> AnalysisRun:
    return run.model_copy(update={"status": status})


def plan_run(
    run: AnalysisRun, outcomes: Sequence[Outcome], now: datetime, secrets: Mapping[str, str] | None = None
) -> RunPlan:
    """The next plan for ``run`` (see the module docstring). ``secrets``: argument name -> secret value."""
    status = run.status.model_copy(deep=True)
    if _completed(status.phase):
        return RunPlan(status)
    problems = validate_run_spec(run.spec)
    if problems:
        message = "analysis spec invalid: " + "; ".join(str(p) for p in problems)
        status = status.model_copy(update={"phase": AnalysisPhase.ERROR.value, "message": message})
        return RunPlan(
            status, events=(RunEvent("Warning", "Failed", f"analysis completed {AnalysisPhase.ERROR}"),)
        )
    started = status.started_at or now
    results = _apply(run.spec, status.metric_results, outcomes)
    results, events = _reassess(run.spec, results)
    verdict = assess.assess_run(run.spec, results)
    status = status.model_copy(
        update={
            "started_at": started,
            "metric_results": results,
            "phase": verdict.phase.value,
            "message": verdict.message,
            "run_summary": verdict.run_summary,
            "dry_run_summary": verdict.dry_run_summary,
        }
    )
    if verdict.phase.completed:
        kind = "Warning" if verdict.phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR) else "Normal"
        reason = "Failed" if kind == "Warning" else "Complete"
        completed = RunEvent(kind, reason, f"analysis completed {verdict.phase}")
        return RunPlan(status, events=(*events, completed))
    if verdict.terminating:
        return RunPlan(status, events=tuple(events))
    requests, next_due = _schedule(run.spec, status, started, now, secrets or {})
    requeue = max(0.0, (next_due - now).total_seconds()) if next_due is not None else None
    return RunPlan(status, tuple(requests), requeue, tuple(events))


def _completed(phase: str) -> bool:
    # An unknown phase (a hand-edited status) is treated as not finished: the run is re-assessed.
    return phase in {p.value for p in AnalysisPhase if p.completed}


# --- applying outcomes -----------------------------------------------------------------------------------


def _apply(
    spec: AnalysisRunSpec, results: Sequence[MetricResult], outcomes: Sequence[Outcome]
) -> list[MetricResult]:
    by_name = {r.name: r for r in results}
    metrics = {m.name: m for m in spec.metrics}
    for outcome in outcomes:
        metric = metrics.get(outcome.request.metric)
        if metric is None:
            continue
        result = by_name.get(metric.name) or MetricResult(
            name=metric.name, phase=AnalysisPhase.RUNNING, dry_run=assess.is_dry_run(spec, metric.name)
        )
        if result.phase.completed:
            continue
        if metric.provider.judge is not None:
            measurement, state = assess.judge_measurement(metric, result.judge, outcome)
            result = result.model_copy(update={"judge": state})
        elif metric.provider.exposure is not None:
            measurement = exposure.exposure_measurement(metric, outcome)
        else:
            measurement = assess.threshold_measurement(metric, outcome)
        by_name[metric.name] = assess.record(result, measurement, assess.retention(spec, metric.name))
    # Status lists metrics in spec order.
    return [by_name[m.name] for m in spec.metrics if m.name in by_name]


def _reassess(
    spec: AnalysisRunSpec, results: list[MetricResult]
) -> tuple[list[MetricResult], list[RunEvent]]:
    terminating = assess.is_terminating(spec, results)
    metrics = {m.name: m for m in spec.metrics}
    events: list[RunEvent] = []
    out: list[MetricResult] = []
    for result in results:
        phase, message = assess.assess_metric(metrics[result.name], result, terminating)
        if phase != result.phase and phase.completed:
            kind = "Warning" if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR) else "Normal"
            detail = f": {message}" if message else ""
            events.append(
                RunEvent(
                    kind,
                    "Failed" if kind == "Warning" else "Complete",
                    f"metric '{result.name}' completed {phase}{detail}",
                )
            )
        out.append(result.model_copy(update={"phase": phase, "message": message}))
    return out, events


# --- scheduling ------------------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    return parse_duration(text) if text else 0.0


def _due(metric: Metric, result: MetricResult | None, started: datetime) -> datetime | None:
    """When the metric's next measurement is due; None when it needs no more."""
    data_start = started + timedelta(seconds=_seconds(metric.initial_delay))
    interval = _seconds(metric.interval)
    share = metric.provider.exposure
    if share is not None:
        interval = interval or exposure.window_seconds(share)
    if result is None or not result.measurements:
        wait = interval if metric.provider.judge is not None else 0.0
        if share is not None:
            wait = exposure.window_seconds(share)
        return data_start + timedelta(seconds=wait)
    count = assess.limits(metric).count
    # Exposure looks until enough were within the tolerance (the metric then ends and is not asked).
    if share is None and count is not None and result.count >= count:
        return None
    last = result.measurements[-1]
    if not interval:
        if last.phase is not AnalysisPhase.ERROR:
            return None
        interval = DEFAULT_ERROR_RETRY
    finished = last.finished_at or last.started_at or started
    return finished + timedelta(seconds=interval)


def _schedule(
    spec: AnalysisRunSpec,
    status: AnalysisRunStatus,
    started: datetime,
    now: datetime,
    secrets: Mapping[str, str],
) -> tuple[list[MeasurementRequest], datetime | None]:
    requests: list[MeasurementRequest] = []
    later: list[datetime] = []
    for metric in spec.metrics:
        result = status.result(metric.name)
        if result is not None and result.phase.completed:
            continue
        due = _due(metric, result, started)
        if due is None:
            continue
        if due <= now:
            requests.append(_request(metric, result, started, now, secrets))
        else:
            later.append(due)
    return requests, min(later, default=None)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{{args.NAME}}`` for every name in ``values``; other placeholders are left as they are."""
    for name, value in values.items():
        text = text.replace("{{args." + name + "}}", value)
    return text


def _request(
    metric: Metric, result: MetricResult | None, started: datetime, now: datetime, secrets: Mapping[str, str]
) -> MeasurementRequest:
    masked = dict.fromkeys(secrets, MASK)
    prometheus, judge = metric.provider.prometheus, metric.provider.judge
    if prometheus is not None:
        timeout = float(prometheus.timeout) if prometheus.timeout else DEFAULT_TIMEOUT
        query = InstantQuery(
            substitute(prometheus.address, secrets), substitute(prometheus.query, secrets), now, timeout
        )
        return MeasurementRequest(metric.name, query, shown_query=substitute(prometheus.query, masked))
    share = metric.provider.exposure
    if share is not None:
        timeout = float(share.timeout) if share.timeout else DEFAULT_TIMEOUT
        return exposure.exposure_request(metric, share, now, timeout, secrets)
    if judge is None:
        raise ValueError(f"metric {metric.name!r} has no provider")
    return _judge_request(metric, judge, result, started, now, secrets)


def _judge_request(
    metric: Metric,
    judge: JudgeMetric,
    result: MetricResult | None,
    started: datetime,
    now: datetime,
    secrets: Mapping[str, str],
) -> MeasurementRequest:
    looks = result.count if result is not None else 0
    count = assess.limits(metric).count
    look, final = looks + 1, count is not None and looks + 1 >= count
    data_start = started + timedelta(seconds=_seconds(metric.initial_delay))
    address = substitute(judge.address, secrets)
    timeout = float(judge.timeout) if judge.timeout else DEFAULT_TIMEOUT
    masked = dict.fromkeys(secrets, MASK)
    if judge.counts is not None:
        window_start = (
            result.judge.window_end if result and result.judge and result.judge.window_end else None
        ) or data_start
        window = f"{max(1, round((now - window_start).total_seconds()))}s"
        counts = judge.counts
        texts = (counts.canary.events, counts.canary.total, counts.stable.events, counts.stable.total)
        x, a, y, b = (substitute(text, secrets).replace("{{window}}", window) for text in texts)
        query = CountsQuery(address, x, a, y, b, now, timeout)
        labels = ("canary events", "canary total", "stable events", "stable total")
        shown = "; ".join(
            f"{label}: {substitute(text, masked).replace('{{window}}', window)}"
            for label, text in zip(labels, texts, strict=True)
        )
        return MeasurementRequest(metric.name, query, look, final, window_start, shown)
    samples = judge.samples
    if samples is None:
        raise ValueError(f"judge metric {metric.name!r} has neither counts nor samples")
    query_s = SamplesQuery(
        address,
        substitute(samples.canary, secrets),
        substitute(samples.stable, secrets),
        data_start,
        now,
        parse_duration(samples.step),
        timeout,
    )
    shown = f"canary: {substitute(samples.canary, masked)}; stable: {substitute(samples.stable, masked)}"
    return MeasurementRequest(metric.name, query_s, look, final, data_start, shown)
