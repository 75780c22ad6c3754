"""Small builders for analysis tests: metrics, runs and provider outcomes at fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from graylane.analysis.contract import MeasurementRequest, Outcome, Value
from graylane.api.analysis import AnalysisRun, Metric

T0 = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)
ADDRESS = "http://127.0.0.1:9090"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def prometheus_metric(name: str = "error-rate", **fields: Any) -> Metric:
    body: dict[str, Any] = {
        "name": name,
        "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": ADDRESS, "query": "sum(rate(errors[1m]))"}},
    }
    body.update(fields)
    return Metric.model_validate(body)


def counts_judge_metric(name: str = "judge", **judge: Any) -> Metric:
    body: dict[str, Any] = {
        "name": name,
        "interval": "30s",
        "count": 4,
        "provider": {
            "judge": {
                "address": ADDRESS,
                "counts": {
                    "canary": {
                        "events": 'sum(increase(req{v="2",code="500"}[{{window}}]))',
                        "total": 'sum(increase(req{v="2"}[{{window}}]))',
                    },
                    "stable": {
                        "events": 'sum(increase(req{v="1",code="500"}[{{window}}]))',
                        "total": 'sum(increase(req{v="1"}[{{window}}]))',
                    },
                },
                **judge,
            }
        },
    }
    return Metric.model_validate(body)


def run(*metrics: Metric, **spec: Any) -> AnalysisRun:
    body: dict[str, Any] = {"metrics": [m.model_dump(by_alias=True, exclude_none=True) for m in metrics]}
    body.update(spec)
    return AnalysisRun.model_validate({"metadata": {"name": "r", "namespace": "ns"}, "spec": body})


def outcome(request: MeasurementRequest, value: Value | None = None, error: str = "") -> Outcome:
    started = getattr(request.query, "time", None) or getattr(request.query, "end", T0)
    return Outcome(request, started, started, value=value, error=error)
