"""The analysis part of `graylane status` and `describe`: each metric of the release's AnalysisRuns.

`analysis_rows(runs)` keeps the runs of the latest release (the runs of one revision and release, as the
controller labels them) and gives one row per metric: its phase, how many measurements ended how, the
last value, the reason, and for the statistical judge the p-values of its tests against their
thresholds and the headline effect with its interval. Pure: no I/O, no rich.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from graylane.api.analysis import RELEASE_LABEL, REVISION_LABEL, STEP_LABEL

__all__ = ["MetricRow", "analysis_rows", "latest_runs"]

Obj = dict[str, Any]
VALUE_CHARS: Final = 120


class MetricRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    run: str
    step: str  # "1".."n", "background", or "" for a run not made by a Rollout
    run_phase: str
    metric: str
    phase: str
    dry_run: bool
    measured: str  # e.g. "3: 2 Successful, 1 Failed"
    last_value: str
    message: str
    p_values: str  # judge only: "conditional-binomial p=0.0021 < 0.05"
    effect: str  # judge only: "rate ratio (canary / stable) 3.2 [1.7, 6.4]"


def _labels(run: Mapping[str, Any]) -> Mapping[str, str]:
    return (run.get("metadata") or {}).get("labels") or {}


def latest_runs(runs: Sequence[Obj]) -> list[Obj]:
    """The runs of the newest release (by the release label, then by creation), steps in order."""
    if not runs:
        return []

    def release(run: Obj) -> tuple[int, str]:
        labels = _labels(run)
        stamp = str(labels.get(RELEASE_LABEL) or "0")
        created = str((run.get("metadata") or {}).get("creationTimestamp") or "")
        return (int(stamp) if stamp.isdigit() else 0, created)

    newest = max(runs, key=release)
    key = (_labels(newest).get(REVISION_LABEL), _labels(newest).get(RELEASE_LABEL))
    mine = [r for r in runs if (_labels(r).get(REVISION_LABEL), _labels(r).get(RELEASE_LABEL)) == key]
    if key == (None, None):
        mine = [newest]

    def order(run: Obj) -> tuple[int, str]:
        step = str(_labels(run).get(STEP_LABEL) or "")
        return (int(step) if step.isdigit() else 10_000, step)

    return sorted(mine, key=order)


def _fmt(value: object) -> str:
    return "inf" if value is None else f"{float(str(value)):.4g}"


def _judge(last: Mapping[str, Any]) -> tuple[str, str]:
    report = last.get("judge") or {}
    tests = [
        f"{t.get('name')} p={_fmt(t.get('pValue'))}"
        + (f" < {_fmt(t.get('threshold'))}" if t.get("rejected") else "")
        for t in report.get("tests") or []
    ]
    effects = report.get("effects") or []
    effect = ""
    if effects:
        first = effects[0]
        interval = f" [{_fmt(first.get('lower'))}, {_fmt(first.get('upper'))}]" if "lower" in first else ""
        estimate = _fmt(first.get("estimate")) if first.get("estimate") is not None else "-"
        effect = f"{first.get('name')} {estimate}{interval}"
    verdict = f"{report['verdict']} at look {report.get('look')}: " if report.get("verdict") else ""
    return verdict + ", ".join(tests), effect


def _measured(result: Mapping[str, Any]) -> str:
    counts = [(k, int(result.get(k) or 0)) for k in ("successful", "failed", "inconclusive", "error")]
    parts = [f"{n} {k.capitalize()}" for k, n in counts if n]
    return f"{int(result.get('count') or 0)}" + (f": {', '.join(parts)}" if parts else "")


def analysis_rows(runs: Sequence[Obj]) -> list[MetricRow]:
    rows = []
    for run in latest_runs(runs):
        meta, status = run.get("metadata") or {}, run.get("status") or {}
        results = {str(m.get("name")): m for m in status.get("metricResults") or []}
        for metric in (run.get("spec") or {}).get("metrics") or []:
            name = str(metric.get("name"))
            result = results.get(name, {})
            measurements = result.get("measurements") or []
            last = measurements[-1] if measurements else {}
            p_values, effect = _judge(last) if last.get("judge") else ("", "")
            rows.append(
                MetricRow(
                    run=str(meta.get("name", "")),
                    step=str(_labels(run).get(STEP_LABEL) or ""),
                    run_phase=str(status.get("phase") or "Pending"),
                    metric=name,
                    phase=str(result.get("phase") or "Pending"),
                    dry_run=bool(result.get("dryRun")),
                    measured=_measured(result),
                    last_value=str(last.get("value") or "")[:VALUE_CHARS],
                    message=str(result.get("message") or last.get("message") or ""),
                    p_values=p_values,
                    effect=effect,
                )
            )
    return rows
